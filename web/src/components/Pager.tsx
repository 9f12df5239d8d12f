// Newer/older paging under a list whose page lives in the URL (`offset`).

export function Pager(props: { total: number; offset: number; pageSize: number; onPage: (offset: number) => void }) {
  const { total, offset, pageSize } = props;
  const first = total ? offset + 1 : 0;
  const last = Math.min(total, offset + pageSize);
  return (
    <div class="row pager">
      <span class="muted">
        {first}–{last} of {total}
      </span>
      <span class="spacer" />
      <button disabled={offset === 0} onClick={() => props.onPage(Math.max(0, offset - pageSize))}>
        ← Newer
      </button>
      <button disabled={offset + pageSize >= total} onClick={() => props.onPage(offset + pageSize)}>
        Older →
      </button>
    </div>
  );
}
