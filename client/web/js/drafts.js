// Unsent words kept in sessionStorage (this tab only, gone when it closes),
// keyed by room, role, round and step, so a dropped connection or a reload
// never loses what someone typed. A draft is removed once its turn is acked.

const PREFIX = 'attune.draft';

export function draftKey(room, role, round, stepId, scope) {
  return [PREFIX, room, role, round, stepId, scope || 'turn'].join('|');
}

export function loadDraft(key) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveDraft(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: the words stay on screen anyway */
  }
}

export function dropDraft(key) {
  try {
    sessionStorage.removeItem(key);
  } catch {
    /* ignore */
  }
}
