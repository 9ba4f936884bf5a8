/**
 * Human tables (cli-table3): boxed with a bold header on a terminal; without one, plain columns
 * separated by two spaces with an upper-case header, which `grep`, `awk` and `column` handle.
 */
import Table from 'cli-table3';

/** A table to print: header cells and rows of the same length. */
export interface TableData {
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

const NO_BORDER = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '',
};

/** Renders a table; `tty` chooses boxes and colour over plain columns. Ends with a newline. */
export function renderTable(data: TableData, tty: boolean): string {
  const table = tty
    ? new Table({ head: [...data.head], style: { head: ['bold'], border: [], compact: true } })
    : new Table({ head: data.head.map((h) => h.toUpperCase()), chars: NO_BORDER, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 2 } });
  for (const row of data.rows) table.push([...row]);
  const text = table.toString();
  // Plain mode pads the last column too; trailing blanks are noise in files and diffs.
  return (tty ? text : text.split('\n').map((l) => l.trimEnd()).join('\n')) + '\n';
}
