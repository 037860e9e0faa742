// Human wording: role names, kind error messages, rupture kinds and how a
// turn's input values read back. One place so every view says things alike.

export function roleName(role, you) {
  if (role && role === you) return 'you';
  switch (role) {
    case 'partner_a':
      return 'Partner A';
    case 'partner_b':
      return 'Partner B';
    case 'therapist':
      return 'your therapist';
    case 'observer':
      return 'an observer';
    case 'system':
      return 'Attune';
    default:
      return role || '';
  }
}

/** Role name for staff views (no "you"/"your"). */
export function staffRoleName(role) {
  switch (role) {
    case 'partner_a':
      return 'Partner A';
    case 'partner_b':
      return 'Partner B';
    case 'therapist':
      return 'Therapist';
    case 'observer':
      return 'Observer';
    case 'system':
      return 'Detector';
    default:
      return role || '';
  }
}

export function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

export function otherPartner(role) {
  if (role === 'partner_a') return 'partner_b';
  if (role === 'partner_b') return 'partner_a';
  return null;
}

const KIND_ERRORS = {
  not_your_turn: "It isn't your turn just yet. Your partner is answering; your words are kept here.",
  session_paused:
    'The session is paused for now. Take your time. Your words are kept, and you can send them when the session resumes.',
  session_ended: 'This session has ended, so nothing more can be sent.',
  consent_required: 'This needs both of you to have agreed to the session (and not withdrawn). Nothing was sent.',
  invalid_input: 'Part of that answer could not be used. Please look it over and try again.',
  invalid_step: 'The exercise moved on before that arrived. Your words are still here.',
  rate_limited: 'That was a little quick. Please wait a moment and try again.',
  room_busy: 'A lot is being sent in this session right now. Please wait a moment and try again.',
  log_full: 'This session cannot take anything more. Your therapist can still see everything sent so far.',
  internal: 'Something went wrong on our side. Your words are still here; please try again.',
  forbidden: "That isn't something this link can do.",
  not_found: 'That has already been taken care of.',
  too_large: 'That is longer than can be sent at once. Please shorten it a little.',
  bad_token: 'This invitation link does not work any more. Please ask your therapist for a new one.',
  offline: "You're not connected right now. Your words are kept; we'll reconnect by ourselves.",
  disconnected:
    'The connection dropped before that was confirmed. We are reconnecting; your words are kept.',
  already_authenticated: 'This page is already connected.',
  wrong_room:
    'The address this page was opened with names another session than the invitation. Please open the link exactly as your therapist sent it.',
};

// What the page says while its connection comes back by itself (a toast).
export const CONNECTION_TEXT = {
  shutdown: 'The server is restarting. We will reconnect by ourselves.',
  room_moved: 'The session is moving to another server. We are reconnecting by ourselves; nothing is lost.',
};

export function kindError(error) {
  const code = error && error.code;
  return KIND_ERRORS[code] || 'Something went wrong sending that. Please try again.';
}

export const RUPTURE_KIND = {
  withdrawal: 'Withdrawal',
  confrontation: 'Confrontation',
  misattunement: 'Misattunement',
  disconnection_felt: 'Felt disconnection',
  flooding: 'Flooding',
};

export const SUSPICION_STATUS = {
  suspected: 'suspected',
  confirmed: 'confirmed',
  dismissed: 'dismissed',
};

export const BLAME_CLASS = {
  criticism: 'criticism',
  contempt: 'contempt',
};

/** What each kind of event is, in plain words, for the consent notice's "receives" lists. */
export const EVENT_WORDS = {
  room_created: 'that the room was set up',
  joined: 'who connects',
  left: 'who disconnects',
  replaced: 'when a link is opened on another device',
  consented: 'who gives consent',
  consent_withdrawn: 'who withdraws consent',
  checkin_answered: 'safety check-in answers',
  checkin_completed: 'that the check-in is done',
  turn: 'everything shared in the exercise',
  control: 'the therapist’s steps through the exercise (next, back, pause, end)',
  pause_requested: 'pause requests and their notes',
  repair_attempt: 'repair attempts',
  repair_accepted: 'accepted repair attempts',
  repair_replied: 'answers to repair attempts',
  rupture_opened: 'ruptures the therapist names or confirms',
  rupture_repaired: 'how ruptures were repaired',
  rupture_suspected: 'the software’s suggestions (unconfirmed)',
  rupture_confirmed: 'which suggestions the therapist confirmed',
  rupture_dismissed: 'which suggestions the therapist set aside',
  note: 'the therapist’s private notes',
  private_message: 'private messages with the therapist',
  therapist_requested: 'requests for a private word with the therapist',
};

export const SOURCE = {
  detector: 'noticed by Attune',
  partner: 'raised by the partner',
  therapist: 'marked by the therapist',
};

export const REPAIR_HOW = {
  therapist_strategy: 'therapist',
  repair_attempt: 'accepted repair attempt',
  reconnect: 'reconnected',
  reflection_confirmed: 'reflection confirmed',
  resumed: 'took their turn',
};

/** Reads an input value back as text, using the script and vocabularies. */
export function describeValue(model, inputDef, value) {
  if (value === undefined || value === null) return '';
  const kind = inputDef ? inputDef.kind : typeof value === 'object' ? 'need' : 'text';
  switch (kind) {
    case 'emotion_reactive':
    case 'emotion_primary':
    case 'need': {
      const vocabName =
        (inputDef && inputDef.vocab) ||
        { emotion_reactive: 'reactive', emotion_primary: 'primary', need: 'needs' }[kind];
      const parts = [];
      if (value.id) {
        const entry = model.vocabEntry(vocabName, value.id);
        parts.push(entry ? `${entry.label}: “${entry.sentence}”` : value.id);
      }
      if (value.text) parts.push(`In their words: “${value.text}”`);
      return parts.join(' ');
    }
    case 'rating': {
      const max = inputDef && inputDef.max != null ? inputDef.max : 10;
      return `${value} out of ${max}`;
    }
    case 'choice': {
      const option = inputDef && (inputDef.options || []).find((o) => o.id === value);
      return option ? option.label : String(value);
    }
    default:
      return String(value);
  }
}

export function describeRupture(model, rupture, viewerIsStaff) {
  const kind = RUPTURE_KIND[rupture.kind] || rupture.kind;
  const marker = model.markerLabel(rupture.marker);
  const name = viewerIsStaff ? staffRoleName : (r) => capitalize(roleName(r, model.role));
  return {
    kind,
    marker,
    between: `${name(rupture.who)} with ${viewerIsStaff ? name(rupture.with) : roleName(rupture.with, model.role)}`,
  };
}
