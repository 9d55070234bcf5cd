// The runs ticked for comparison: kept in sessionStorage so the list, the run page and the compare page
// share it within a tab.
import { SELECTION_KEY } from './constants.js';

export function loadSelection() {
  try { return new Set(JSON.parse(sessionStorage.getItem(SELECTION_KEY) || '[]')); } catch { return new Set(); }
}

export function saveSelection(selection) {
  try { sessionStorage.setItem(SELECTION_KEY, JSON.stringify([...selection])); } catch { /* storage off: this page only */ }
}

export function forgetSelected(id) {
  const selection = loadSelection();
  if (selection.delete(id)) saveSelection(selection);
}

export const sortedIds = ids => [...ids].sort((a, b) => a - b);
