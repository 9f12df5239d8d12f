// The end of a list's filter form: the free-text search box, then Filter (submits the form) and
// Clear. Text is applied on submit, not per keystroke.

import { val } from "../ui";

export function FilterSearch(props: { value: string; placeholder: string; onInput: (v: string) => void; onClear: () => void }) {
  return (
    <>
      <label class="grow">
        <span class="label">Search</span>
        <input
          name="q"
          type="search"
          placeholder={props.placeholder}
          value={props.value}
          onInput={(e) => props.onInput(val(e))}
        />
      </label>
      <div class="row filter-buttons">
        <button type="submit">Filter</button>
        <button type="button" class="link" onClick={props.onClear}>
          Clear
        </button>
      </div>
    </>
  );
}
