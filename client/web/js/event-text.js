// One line of plain words per event, for the staff views (the live session
// log, the replay's chapters, the report's evidence). Private events (the
// private line, the check-in answers) say so.

import { formatClock } from './dom.js';
import { staffRoleName, RUPTURE_KIND, REPAIR_HOW } from './words.js';

/** Event types only the therapist (and the partner concerned) ever receive. */
export const PRIVATE_TYPES = new Set(['private_message', 'therapist_requested', 'checkin_answered']);

/** A duration in plain words: "0.4 s", "12 s", "3 min 5 s". */
function seconds(ms) {
  if (ms < 10000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function suspicionWords(m, r) {
  const cls = r.class ? ` (${r.class})` : '';
  return `${RUPTURE_KIND[r.kind] || r.kind}, ${m.markerLabel(r.marker)}${cls}`;
}

export function logText(m, e) {
  const who = staffRoleName(e.by);
  switch (e.type) {
    case 'room_created':
      return `Room created (${e.exercise}); ${staffRoleName(e.first_speaker)} speaks first${e.checkin ? '; safety check-in first' : ''}.`;
    case 'joined':
      return `${who} joined.`;
    case 'left':
      return `${who} left (${e.reason}).`;
    case 'replaced':
      return `${who} reconnected from another device (the earlier window was stopped).`;
    case 'reconnected': {
      const times = e.times === 1 ? 'once' : `${e.times} times`;
      const away = e.gap_ms > 0 ? `, away ${seconds(e.gap_ms)} in all` : '';
      return `${e.by === 'observer' ? 'An observer' : who}: connection dropped and came back ${times}${away}.`;
    }
    case 'consented':
      return `${who} agreed to the session${e.notice_version ? ` (notice version ${e.notice_version})` : ''}.`;
    case 'consent_withdrawn':
      return `${who} withdrew their consent; the room paused.`;
    case 'checkin_answered': {
      const answers = m.describeAnswers(e.answers).map((a) => `${a.answer}${a.holds ? ' (holds the session)' : ''}`);
      return `Private: ${who} answered the check-in: ${answers.join('; ') || 'no answer'}${e.note ? `; note: “${e.note}”` : ''}.`;
    }
    case 'checkin_completed':
      return 'Check-in complete: every answer was clear; the joint session began.';
    case 'turn': {
      const def = m.stepDef(e.step);
      return `${who}: ${def ? def.title : e.step} (round ${e.round + 1}).`;
    }
    case 'control':
      if (e.action === 'proceed') return `${who}: go on with the joint session (after the check-in).`;
      return `${who}: ${e.action}.`;
    case 'pause_requested':
      return `${who} asked for a pause${e.note ? `: “${e.note}”` : '.'}`;
    case 'repair_attempt':
      return `${who} tried to repair${e.text ? `: “${e.text}”` : '.'}`;
    case 'repair_accepted':
      return `${who} accepted the repair attempt.`;
    case 'repair_replied':
      return e.reply === 'need_a_moment'
        ? `${who} answered the repair attempt: thank you, I need a moment.`
        : `${who} acknowledged the repair attempt.`;
    case 'rupture_opened':
      return `Rupture ${e.rupture.id} opened: ${RUPTURE_KIND[e.rupture.kind] || e.rupture.kind}, ${m.markerLabel(e.rupture.marker)} (${staffRoleName(e.rupture.who)})${e.rupture.source === 'detector' ? ', a confirmed suspicion' : ''}.`;
    case 'rupture_suspected':
      return `Suspicion ${e.rupture.id} raised: ${suspicionWords(m, e.rupture)} (${staffRoleName(e.rupture.who)}).`;
    case 'rupture_confirmed':
      if (e.suspicion_id !== undefined) return `Suspicion ${e.suspicion_id} confirmed as rupture ${e.rupture_id}.`;
      return `Rupture ${e.rupture.id} confirmed: ${RUPTURE_KIND[e.rupture.kind] || e.rupture.kind}, ${m.markerLabel(e.rupture.marker)} (${staffRoleName(e.rupture.who)}).`;
    case 'rupture_dismissed':
      if (e.suspicion_id !== undefined) return `Suspicion ${e.suspicion_id} dismissed${e.note ? `: “${e.note}”` : '.'}`;
      return `Rupture ${e.rupture_id} dismissed${e.note ? `: “${e.note}”` : '.'}`;
    case 'rupture_repaired':
      return `Rupture ${e.rupture_id} repaired (${e.how === 'therapist_strategy' ? m.strategyLabel(e.strategy) : REPAIR_HOW[e.how] || e.how}).`;
    case 'note': {
      const about = e.rupture_id ? ` on rupture ${e.rupture_id}` : e.suspicion_id ? ` on suspicion ${e.suspicion_id}` : '';
      return `Private note${about}: “${e.text}”`;
    }
    case 'private_message':
      return e.by === 'therapist'
        ? `Private: Therapist to ${staffRoleName(e.to)}: “${e.text}”`
        : `Private: ${who} to the therapist: “${e.text}”`;
    case 'therapist_requested':
      return `Private: ${who} asked to check something with the therapist.`;
    default:
      return `${e.type.replace(/_/g, ' ')} (${who}).`;
  }
}

export function evidenceText(m, e) {
  switch (e.type) {
    case 'pause_requested':
      return `${staffRoleName(e.by)} asked for a pause${e.note ? `: “${e.note}”` : '.'}`;
    case 'left':
      return `${staffRoleName(e.by)} disconnected (${e.reason}) at ${formatClock(e.at)}.`;
    case 'repair_attempt':
      return `${staffRoleName(e.by)}: “${e.text || 'let me try again'}”`;
    case 'turn': {
      const def = m.stepDef(e.step);
      const texts = [];
      for (const [name, v] of Object.entries(e.input)) {
        if (typeof v === 'string' && (!def || (def.inputs.find((i) => i.name === name) || {}).kind === 'text')) texts.push(v);
        else if (v && typeof v === 'object' && v.text) texts.push(v.text);
        else if (typeof v === 'number') texts.push(`${name}: ${v}`);
        else if (typeof v === 'string') texts.push(v);
      }
      return `${staffRoleName(e.by)} (${def ? def.title : e.step}): ${texts.map((t) => `“${t}”`).join(' ')}`;
    }
    default:
      return `${e.type.replace(/_/g, ' ')} by ${staffRoleName(e.by)} at ${formatClock(e.at)}`;
  }
}
