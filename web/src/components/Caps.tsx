// A session's optional caps (`memory_max_bytes`, `pids_max`), shared by the new-terminal form and
// the agent definition form. Memory is typed in MiB or GiB and sent in bytes; the server checks
// the bounds and whether this machine can enforce a cap at all (cgroup v2 controllers delegated,
// docs/operations.md), and its 422 is shown under the field it names.

import { ApiError } from "../api";
import { Field, fieldIs, val } from "../ui";

const MIB = 1 << 20;
const GIB = 1 << 30;

export interface CapsText {
  memory: string;
  unit: "MiB" | "GiB";
  pids: string;
}

export const NO_CAPS: CapsText = { memory: "", unit: "MiB", pids: "" };

/** The form's text for stored caps: whole GiB shown as GiB, anything else as MiB. */
export function capsText(memoryMaxBytes?: number | null, pidsMax?: number | null): CapsText {
  const pids = pidsMax == null ? "" : String(pidsMax);
  if (memoryMaxBytes == null) return { ...NO_CAPS, pids };
  if (memoryMaxBytes % GIB === 0) return { memory: String(memoryMaxBytes / GIB), unit: "GiB", pids };
  return { memory: String(+(memoryMaxBytes / MIB).toFixed(3)), unit: "MiB", pids };
}

/** The caps as the API takes them; empty is `null` (none). Typing mistakes are errors on the field. */
export function capsBody(c: CapsText): { memory_max_bytes: number | null; pids_max: number | null } {
  const memory = c.memory.trim();
  const pids = c.pids.trim();
  let memoryMaxBytes: number | null = null;
  if (memory) {
    const n = Number(memory);
    if (!Number.isFinite(n) || n <= 0)
      throw new ApiError(0, "invalid_input", `memory cap: a positive number of ${c.unit}`, "memory_max_bytes");
    memoryMaxBytes = Math.round(n * (c.unit === "GiB" ? GIB : MIB));
  }
  let pidsMax: number | null = null;
  if (pids) {
    const n = Number(pids);
    if (!Number.isInteger(n) || n <= 0)
      throw new ApiError(0, "invalid_input", "process cap: a whole number ≥ 1", "pids_max");
    pidsMax = n;
  }
  return { memory_max_bytes: memoryMaxBytes, pids_max: pidsMax };
}

/** Whether `error` is about a cap field (then it is shown there, not in the form's banner). */
export function isCapError(error: unknown): boolean {
  return fieldIs(error, "memory_max_bytes") || fieldIs(error, "pids_max");
}

/** The message of `error` when it is about `field`, shown under that field. */
function FieldMessage(props: { error: unknown; field: string }) {
  if (!fieldIs(props.error, props.field) || !(props.error instanceof ApiError)) return null;
  return (
    <span class="field-error" role="alert" data-field={props.field}>
      {props.error.message}
    </span>
  );
}

export function CapsFields(props: { caps: CapsText; onChange: (c: CapsText) => void; error: unknown }) {
  const c = props.caps;
  const set = (k: keyof CapsText) => (e: Event) => props.onChange({ ...c, [k]: val(e) } as CapsText);
  return (
    <>
      <Field
        label="Memory cap"
        invalid={fieldIs(props.error, "memory_max_bytes")}
        hint="optional; the whole session, background jobs included, is stopped at it"
      >
        <span class="row cap-input">
          <input name="memory_max" inputMode="decimal" value={c.memory} onInput={set("memory")} placeholder="none" autocomplete="off" />
          <select name="memory_unit" aria-label="memory cap unit" value={c.unit} onChange={set("unit")}>
            <option value="MiB">MiB</option>
            <option value="GiB">GiB</option>
          </select>
        </span>
        <FieldMessage error={props.error} field="memory_max_bytes" />
      </Field>
      <Field label="Process cap" invalid={fieldIs(props.error, "pids_max")} hint="optional; most processes at once">
        <input name="pids_max" inputMode="numeric" value={c.pids} onInput={set("pids")} placeholder="none" autocomplete="off" />
        <FieldMessage error={props.error} field="pids_max" />
      </Field>
    </>
  );
}

/**
 * A cap kill's reason made readable: the server writes `memory_max_bytes = 33554432`; the
 * user typed 32 MiB. Other reasons come back unchanged.
 */
export function readableReason(reason: string): string {
  return reason.replace(/memory_max_bytes = (\d+)/, (_, n: string) => {
    const c = capsText(Number(n));
    return `${c.memory} ${c.unit}`;
  });
}

/** Whether a recorded end was the memory cap's doing (the detail pages flag it). */
export function capKilled(reason?: string | null): boolean {
  return !!reason && reason.startsWith("killed by its memory cap");
}
