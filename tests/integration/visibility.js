// visibility.js - protocol 2's visibility table (PROTOCOL.md section 6,
// /work/v2-spec.md B), written down independently of the C core: who may see
// each event type. The schema tests check consent.json's `receives` against
// it and wire-privacy.test.js computes each role's wire from it.

export const ROLES = ['partner_a', 'partner_b', 'therapist', 'observer'];
export const PARTNERS = ['partner_a', 'partner_b'];

const all = () => true;
const staff = (_e, role) => role === 'therapist' || role === 'observer';
// P, therapist: P is the partner named in `by`.
const ownLine = (e, role) => role === 'therapist' || role === e.by;

// type -> (event, role) -> may the role see it?
export const VISIBILITY = {
  room_created: all,
  joined: all,
  left: all,
  replaced: (e, role) => role === 'therapist' || role === 'observer' || role === e.by,
  consented: all,
  consent_withdrawn: all,
  checkin_answered: ownLine,
  checkin_completed: all,
  turn: all,
  control: all,
  pause_requested: all,
  repair_attempt: all,
  repair_accepted: all,
  repair_replied: all,
  rupture_opened: all,
  rupture_suspected: staff,
  // protocol 1 logs: the confirm carried the whole rupture and was seen by all
  rupture_confirmed: (e, role) => ('rupture' in e ? true : staff(e, role)),
  rupture_dismissed: staff,
  rupture_repaired: all,
  note: staff,
  private_message: (e, role) => role === 'therapist' || role === e.by || role === e.to,
  therapist_requested: ownLine,
  // debounced presence: how someone's connection fares is for the staff
  reconnected: staff,
};

export function visibleTo(event, role) {
  const rule = VISIBILITY[event.type];
  if (!rule) throw new Error(`unknown event type ${event.type}`);
  return rule(event, role);
}

// The event types a role's wire may ever carry in a protocol 2 room (the
// consent notice's `receives`): a type is listed when some event of that
// type, from some causer, is visible to the role.
export function receivesOf(role) {
  // observers cause only joined and left, which everyone sees
  const causers = ['partner_a', 'partner_b', 'therapist', 'system'];
  const tos = ['therapist', 'partner_a', 'partner_b'];
  return Object.keys(VISIBILITY).filter((type) =>
    causers.some((by) => tos.some((to) => {
      if (type === 'rupture_confirmed') return VISIBILITY[type]({ type, by, suspicion_id: 1, rupture_id: 1 }, role);
      return VISIBILITY[type]({ type, by, to }, role);
    })));
}

// jansson's JSON_COMPACT | JSON_SORT_KEYS for the values a notice holds
// (objects, arrays, strings, integers, booleans, null).
export function canonicalJson(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
}
