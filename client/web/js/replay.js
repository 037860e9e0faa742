// The replay page: a session's stored log on a timeline (steps, turns and
// each rupture as a band from opening to repair), a scrubber over its events,
// and the room as it stood at the scrubber (the stored state after that
// event: never folded here). Play/pause at 1x-8x using the events' times,
// jumps to the previous/next rupture, a live region saying where we are.
// Suspicions have their own lanes and list (suspected, confirmed, dismissed
// apart); pauses are pauses; the private line and the check-in answers are
// marked private (this page is the therapist's).

import { h, replaceChildren, formatClock, formatDuration } from './dom.js';
import { staffRoleName, RUPTURE_KIND, REPAIR_HOW } from './words.js';
import { apiProblem } from './api.js';
import { startStaffPage, speak } from './staff-shell.js';
import { SessionLog, OPENINGS } from './session-log.js';
import { turnBar, roundThread } from './room-parts.js';
import { logText, PRIVATE_TYPES } from './event-text.js';

const MAX_GAP_MS = 3000; // a silence in the session plays as at most 3 s (at 1x)
const MIN_WAIT_MS = 25;
const SPEEDS = [1, 2, 4, 8];
const NOTES_SHOWN = 20; // the latest notes shown at a point of the replay
const STATUS = { waiting_consent: 'waiting for consent', checking_in: 'safety check-in', active: 'in session', paused: 'paused', ended: 'ended' };

const app = document.getElementById('app');
const politeRegion = document.getElementById('announce');
const announce = (t) => speak(politeRegion, t);

function problem(title, text) {
  replaceChildren(app, h('section', { class: 'card problem' }, h('h1', {}, title), h('p', {}, text), h('p', {}, h('a', { href: 'dashboard.html' }, 'Back to your rooms'))));
}

/** One line for an event in the chapter list (adds the answer to a choice step). */
function chapterText(model, e) {
  let text = logText(model, e);
  if (e.type === 'turn') {
    const def = model.stepDef(e.step);
    const choice = def && def.inputs.find((i) => i.kind === 'choice' && e.input[i.name] !== undefined);
    if (choice) {
      const opt = (choice.options || []).find((o) => o.id === e.input[choice.name]);
      text = text.replace(/\.$/, `: ${opt ? opt.label : e.input[choice.name]}.`);
    }
  }
  return text;
}

/** Who was connected at that point (the stored state's `present`). */
function presenceThen(state) {
  const p = state.present;
  const items = ['partner_a', 'partner_b', 'therapist'].map((r) =>
    h('li', { class: p[r] ? 'here' : 'away' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), `${staffRoleName(r)} ${p[r] ? 'connected' : 'not connected'}`),
  );
  if (p.observers) items.push(h('li', { class: 'here' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), `${p.observers} observing`));
  return h('ul', { class: 'presence', 'aria-label': 'Who was connected then' }, items);
}

const CHAPTER_TYPES = new Set([
  'consented',
  'consent_withdrawn',
  'checkin_answered',
  'checkin_completed',
  'replaced',
  'private_message',
  'therapist_requested',
  'turn',
  'control',
  'pause_requested',
  'repair_attempt',
  'repair_accepted',
  'repair_replied',
  'rupture_opened',
  'rupture_suspected',
  'rupture_confirmed',
  'rupture_dismissed',
  'rupture_repaired',
]);

class Replay {
  constructor(log) {
    this.log = log;
    this.pos = 0;
    this.playing = false;
    this.timer = null;
    this.speed = 1;
    this.build();
    this.renderLanes();
    this.setPos(0, 'init');
  }

  /** The whole session's length: the timeline is drawn to it from the first
   * page on, and fills in as the later pages arrive. */
  get total() {
    return Math.max(this.log.total || 0, this.log.length);
  }

  pct(i) {
    const n = this.total;
    return n > 1 ? (i / (n - 1)) * 100 : 0;
  }

  /** A page arrived: the timeline, the list and the scrubber grow (the view
   * stays where it is). */
  grew() {
    // The lanes and the list are redrawn at most every 300 ms while pages
    // stream in (each redraw walks every event loaded), and once at the end.
    const now = performance.now();
    if (this.log.complete || !(now - this.lanesAt < 300)) {
      this.renderLanes();
      this.lanesAt = performance.now();
    }
    if (this.waitingForMore) {
      this.waitingForMore = false;
      this.schedule();
    }
    this.setPos(this.pos, 'grew');
  }

  loadFailed(err) {
    this.loadError = apiProblem(err);
    this.setPos(this.pos, 'grew');
  }

  build() {
    const log = this.log;
    const ex = log.exercise;
    const room = log.room;
    // The room as it stood when the first page was made (later pages keep to that moment).
    const ended = room.status === 'ended';
    const n = this.total;

    this.lanesEl = h('div', { class: 'track-lanes' });
    this.loadedEl = h('span', { class: 'track-unloaded' });
    this.playhead = h('span', { class: 'playhead' });
    const track = h('div', { class: 'track', 'aria-hidden': 'true' }, h('div', { class: 'track-inner' }, this.lanesEl, this.loadedEl, this.playhead));
    track.addEventListener('click', (e) => {
      const box = track.querySelector('.track-inner').getBoundingClientRect();
      const f = Math.min(Math.max((e.clientX - box.left) / box.width, 0), 1);
      this.pause();
      this.setPos(Math.round(f * (this.total - 1)), 'jump');
    });

    this.scrubber = h('input', {
      type: 'range',
      id: 'scrubber',
      class: 'scrubber',
      min: '0',
      max: String(Math.max(n - 1, 0)),
      step: '1',
      value: '0',
      'aria-describedby': 'scrub-help',
    });
    this.scrubber.addEventListener('input', () => {
      this.pause();
      this.setPos(Number(this.scrubber.value), 'scrub');
    });

    this.playButton = h('button', { type: 'button', class: 'primary play' }, 'Play');
    this.playButton.addEventListener('click', () => (this.playing ? this.pause(true) : this.play()));
    const speedSel = h(
      'select',
      { id: 'speed' },
      SPEEDS.map((s) => h('option', { value: String(s) }, `${s}x`)),
    );
    speedSel.addEventListener('change', () => {
      this.speed = Number(speedSel.value);
      if (this.playing) {
        clearTimeout(this.timer);
        this.schedule();
      }
    });
    const prev = h('button', { type: 'button', class: 'secondary' }, 'Previous rupture');
    const next = h('button', { type: 'button', class: 'secondary' }, 'Next rupture');
    prev.addEventListener('click', () => this.jumpRupture(-1));
    next.addEventListener('click', () => this.jumpRupture(1));
    this.prevButton = prev;
    this.nextButton = next;
    this.positionEl = h('p', { class: 'position' });

    this.chaptersEl = h('ol', { class: 'chapters' });

    this.turnEl = h('div', { class: 'turn-slot replay-turn' });
    this.presenceEl = h('div');
    this.nowEl = h('p', { class: 'now-event' });
    this.stepEl = h('section', { class: 'card', 'aria-labelledby': 'replay-step-h' });
    this.threadEl = h('div');
    this.rupturesEl = h('div');
    this.suspicionsEl = h('div');
    this.privateEl = h('div');
    this.notesEl = h('div');

    this.ended = ended;
    replaceChildren(
      app,
      h(
        'div',
        { class: 'replay-layout' },
        h(
          'div',
          { class: 'replay-head' },
          h('h1', {}, 'Session replay'),
          (this.headHint = h('p', { class: 'hint' })),
          // A live session goes on after this page loaded its log.
          ended ? null : h('a', { class: 'button-link', href: location.href }, 'Load what happened since'),
        ),
        h(
          'section',
          { class: 'card timeline-card', 'aria-labelledby': 'tl-h' },
          h('h2', { id: 'tl-h' }, 'Timeline'),
          track,
          h('label', { for: 'scrubber', class: 'visually-hidden' }, 'Position in the session'),
          this.scrubber,
          (this.scrubHelp = h('p', { id: 'scrub-help', class: 'visually-hidden' })),
          h(
            'div',
            { class: 'player' },
            this.playButton,
            h('div', { class: 'speed' }, h('label', { for: 'speed' }, 'Speed'), speedSel),
            h('div', { class: 'jumps' }, prev, next),
            this.positionEl,
          ),
          h(
            'ul',
            { class: 'legend', 'aria-hidden': 'true' },
            h('li', {}, h('span', { class: 'swatch step' }), 'Partner A speaks'),
            h('li', {}, h('span', { class: 'swatch step-b' }), 'Partner B speaks'),
            h('li', {}, h('span', { class: 'swatch turn' }), 'a turn'),
            h('li', {}, h('span', { class: 'swatch open' }), 'rupture, open'),
            h('li', {}, h('span', { class: 'swatch repaired' }), 'rupture, repaired'),
            h('li', {}, h('span', { class: 'swatch paused' }), 'paused'),
            h('li', {}, h('span', { class: 'swatch suspected' }), 'suspicion, undecided'),
            h('li', {}, h('span', { class: 'swatch confirmed' }), 'suspicion, confirmed'),
            h('li', {}, h('span', { class: 'swatch dismissed' }), 'suspicion, dismissed'),
          ),
        ),
        h(
          'div',
          { class: 'replay-columns' },
          h(
            'div',
            { class: 'replay-main' },
            h('section', { class: 'card now-card', 'aria-labelledby': 'now-h' }, h('h2', { id: 'now-h' }, 'At this point'), this.nowEl, this.turnEl, this.presenceEl),
            this.stepEl,
            this.threadEl,
          ),
          h(
            'div',
            { class: 'replay-side' },
            h('section', { class: 'card', 'aria-labelledby': 'rs-h' }, h('h2', { id: 'rs-h' }, 'Ruptures at this point'), this.rupturesEl),
            h('section', { class: 'card', 'aria-labelledby': 'ss-h' }, h('h2', { id: 'ss-h' }, 'Suspicions at this point'), this.suspicionsEl),
            h(
              'section',
              { class: 'card private-card', 'aria-labelledby': 'pv-h' },
              h('h2', { id: 'pv-h' }, h('span', { class: 'chip private' }, 'private'), ' Check-in and private line so far'),
              h('p', { class: 'hint' }, 'Only the therapist and the partner concerned ever saw these.'),
              this.privateEl,
            ),
            h(
              'section',
              { class: 'card', 'aria-labelledby': 'ch-h' },
              h('h2', { id: 'ch-h' }, 'Turns and ruptures, in order'),
              h('p', { class: 'hint' }, 'Choose one to go there.'),
              this.chaptersEl,
            ),
            h('section', { class: 'card', 'aria-labelledby': 'rn-h' }, h('h2', { id: 'rn-h' }, 'Private notes so far'), this.notesEl),
          ),
        ),
      ),
    );
  }

  /** The timeline's lanes and the list of chapters, from the events loaded so far. */
  renderLanes() {
    const log = this.log;
    const n = this.total;
    const duration = formatDuration(log.endAt - log.startAt);
    this.headHint.textContent = `${log.exercise.title} · Room ${log.room.id} · ${new Date(log.startAt).toLocaleDateString([], { day: 'numeric', month: 'long', year: 'numeric' })}, ${formatClock(log.startAt)} · ${duration}${log.complete ? '' : ' so far (loading)'}${this.ended ? '' : ' (still live)'}`;
    this.full = log.modelAtEnd();
    this.spans = log.ruptureSpans();
    this.suspicionSpans = log.suspicionSpans();
    // The timeline picture (pointer users may click it; everyone has the scrubber).
    const stepsLane = h('div', { class: 'track-lane steps' });
    for (const run of log.stepRuns()) {
      const seg = h('span', {
        class: `seg${run.status === 'paused' ? ' paused' : ''}${run.speaker ? ` speaker-${run.speaker}` : ''}${run.round % 2 ? ' r1' : ''}`,
        title: run.step ? `${run.step.title} (round ${run.round + 1})${run.status === 'paused' ? ', paused' : ''}` : STATUS[run.status] || run.status,
      });
      seg.style.left = `${this.pct(run.from)}%`;
      seg.style.width = `${Math.max(this.pct(run.to + 1 > n - 1 ? n - 1 : run.to + 1) - this.pct(run.from), 0.4)}%`;
      stepsLane.appendChild(seg);
    }
    let lastRound = null;
    log.events.forEach(({ event }, i) => {
      if (event.type !== 'turn') return;
      const tick = h('span', { class: `tick${lastRound !== null && event.round !== lastRound ? ' round' : ''}` });
      tick.style.left = `${this.pct(i)}%`;
      stepsLane.appendChild(tick);
      lastRound = event.round;
    });
    // "Round N" over the first turn of each round.
    const roundsLane = h('div', { class: 'track-lane rounds' });
    const seenRounds = new Set();
    log.events.forEach(({ event }, i) => {
      if (event.type !== 'turn' || seenRounds.has(event.round)) return;
      seenRounds.add(event.round);
      const label = h('span', { class: 'round-label' }, `Round ${event.round + 1}`);
      label.style.left = `${this.pct(i)}%`;
      roundsLane.appendChild(label);
    });
    const lanes = [h('p', { class: 'lane-label' }, 'Steps and turns'), roundsLane, stepsLane];
    if (this.spans.length) lanes.push(h('p', { class: 'lane-label' }, 'Ruptures'));
    for (const span of this.spans) {
      const r = span.rupture;
      const openEnded = span.to == null;
      const band = h('span', {
        class: `rband ${r.status}${openEnded ? ' open-ended' : ''}`,
        dataset: { rupture: String(r.id) },
        title: `Rupture ${r.id}: ${RUPTURE_KIND[r.kind] || r.kind}, ${this.full.markerLabel(r.marker)} (${staffRoleName(r.who)})`,
      });
      const to = openEnded ? n - 1 : span.to;
      // 4 px either side, so even a band of one event shows, centred on it.
      band.style.left = `calc(${this.pct(span.from)}% - 4px)`;
      band.style.width = `calc(${Math.max(this.pct(to) - this.pct(span.from), 0)}% + 8px)`;
      lanes.push(h('div', { class: 'track-lane rupture-lane' }, band));
    }
    if (this.suspicionSpans.length) lanes.push(h('p', { class: 'lane-label' }, 'Suspicions (only you saw these)'));
    for (const span of this.suspicionSpans) {
      const sp = span.suspicion;
      const undecided = span.to == null;
      const band = h('span', {
        class: `rband suspicion ${sp.status}${undecided ? ' open-ended' : ''}`,
        dataset: { suspicion: String(sp.id) },
        title: `Suspicion ${sp.id}: ${RUPTURE_KIND[sp.kind] || sp.kind}, ${this.full.markerLabel(sp.marker)} (${staffRoleName(sp.who)}), ${sp.status}`,
      });
      const to = undecided ? n - 1 : span.to;
      band.style.left = `calc(${this.pct(span.from)}% - 4px)`;
      band.style.width = `calc(${Math.max(this.pct(to) - this.pct(span.from), 0)}% + 8px)`;
      lanes.push(h('div', { class: 'track-lane suspicion-lane' }, band));
    }
    replaceChildren(this.lanesEl, lanes);
    // The part of the session still loading, shaded.
    const loaded = this.log.complete ? 100 : this.pct(Math.max(log.length - 1, 0));
    this.loadedEl.style.left = `${loaded}%`;
    this.loadedEl.style.width = `${100 - loaded}%`;
    this.loadedEl.hidden = this.log.complete;
    // The same sequence as a list: every turn and rupture moment, each a jump.
    this.chapterItems = [];
    replaceChildren(
      this.chaptersEl,
      log.events
        .map(({ event }, i) => [event, i])
        .filter(([event]) => CHAPTER_TYPES.has(event.type))
        .map(([event, i]) => {
          const b = h('button', { type: 'button' }, h('span', { class: 'time' }, formatClock(event.at)), ' ', h('span', { class: 'chapter-text' }, chapterText(this.full, event)));
          b.addEventListener('click', () => {
            this.pause();
            this.setPos(i, 'jump');
          });
          const priv = PRIVATE_TYPES.has(event.type);
          if (priv) b.prepend(h('span', { class: 'chip private' }, 'private'), ' ');
          const kind = priv ? 'private-chapter' : event.type.startsWith('rupture_') ? 'rupture-chapter' : event.type === 'pause_requested' ? 'pause-chapter' : 'turn-chapter';
          const li = h('li', { class: kind, dataset: { index: String(i), type: event.type } }, b);
          this.chapterItems.push([i, li]);
          return li;
        }),
    );

    // The scrubber spans the whole session like the timeline above it; a
    // point not loaded yet holds at the last one loaded (setPos).
    this.scrubber.max = String(Math.max(n - 1, 0));
    const none = !this.spans.length && !this.suspicionSpans.length;
    this.prevButton.disabled = none;
    this.nextButton.disabled = none;
    this.scrubHelp.textContent = `One step per recorded event, ${n} in all${log.complete ? '' : ` (${log.length} loaded so far)`}. Arrow keys move one event, Home and End go to the start and the end.`;
  }

  sentence(i) {
    const { event } = this.log.events[i];
    const offset = formatDuration(event.at - this.log.startAt) || '0 s';
    return `${formatClock(event.at)}, ${offset} in: ${chapterText(this.full, event)}`;
  }

  setPos(i, why) {
    const n = this.total;
    const loaded = this.log.length;
    this.pos = Math.min(Math.max(i, 0), loaded - 1);
    const { event, state } = this.log.events[this.pos];
    this.scrubber.value = String(this.pos);
    this.scrubber.setAttribute('aria-valuetext', `Event ${this.pos + 1} of ${n}: ${this.sentence(this.pos)}`);
    this.playhead.style.left = `${this.pct(this.pos)}%`;
    const progress = this.loadError ? ` · the rest could not be loaded: ${this.loadError}` : this.log.complete ? '' : ` · loading the rest: ${loaded} of ${n} events so far`;
    this.positionEl.textContent = `Event ${this.pos + 1} of ${n} · ${formatClock(event.at)} (+${formatDuration(event.at - this.log.startAt) || '0 s'})${progress}`;
    const m = this.log.modelAt(this.pos);

    replaceChildren(this.nowEl, h('span', { class: 'time' }, formatClock(event.at)), chapterText(this.full, event));
    replaceChildren(this.turnEl, turnBar(m));
    replaceChildren(this.presenceEl, presenceThen(state));
    this.renderStep(m, state);
    replaceChildren(this.threadEl, roundThread(m, state.round, `Round ${state.round + 1} so far`));
    this.renderRuptures(m, state, event.at);
    this.renderSuspicions(m, state);
    this.renderPrivate(m, state);
    this.renderNotes(m);
    for (const [idx, li] of this.chapterItems) {
      li.classList.toggle('current', idx === this.pos);
      // Keep the current one in view inside the list (never scrolls the page).
      if (idx === this.pos) {
        const list = li.parentElement;
        if (li.offsetTop < list.scrollTop) list.scrollTop = li.offsetTop;
        else if (li.offsetTop + li.offsetHeight > list.scrollTop + list.clientHeight) list.scrollTop = li.offsetTop + li.offsetHeight - list.clientHeight;
      }
    }

    if (why === 'jump' || why === 'pause') announce(`Event ${this.pos + 1} of ${n}. ${this.sentence(this.pos)}`);
    else if (why === 'play' && (event.type === 'turn' || event.type.startsWith('rupture_') || event.type === 'pause_requested' || PRIVATE_TYPES.has(event.type))) announce(this.sentence(this.pos));
  }

  renderStep(m, state) {
    const ex = this.log.exercise;
    if (!state.step) {
      replaceChildren(
        this.stepEl,
        h('h2', { id: 'replay-step-h' }, state.status === 'ended' ? 'The session had ended' : 'No step'),
        h('p', { class: 'hint' }, state.ended_reason === 'therapist' ? 'Ended by the therapist.' : state.ended_reason === 'completed' ? 'Every round was completed.' : ''),
      );
      return;
    }
    replaceChildren(
      this.stepEl,
      h('p', { class: 'eyebrow' }, `Step ${state.step.index + 1} of ${ex.steps.length} · round ${state.round + 1} of ${state.rounds}`),
      h('h2', { id: 'replay-step-h' }, state.step.title),
      h('p', { class: 'prompt' }, state.step.prompt),
      h(
        'p',
        { class: 'waiting' },
        state.status === 'waiting_consent'
          ? 'Waiting for both partners to agree.'
          : state.status === 'checking_in'
            ? `Safety check-in${state.checkin && state.checkin.held ? ': held for the therapist to decide' : ''}.`
            : state.status === 'paused'
            ? `Paused by ${staffRoleName(state.paused_by)}.`
            : `Waiting for ${staffRoleName(state.step.actor)}.`,
      ),
    );
  }

  renderRuptures(m, state, at) {
    const rs = [...state.ruptures].sort((a, b) => a.opened_seq - b.opened_seq);
    if (!rs.length) {
      replaceChildren(this.rupturesEl, h('p', { class: 'hint' }, 'No ruptures up to here.'));
      return;
    }
    replaceChildren(
      this.rupturesEl,
      h(
        'ol',
        { class: 'rupture-list' },
        rs.map((r) => {
          let status;
          if (r.status === 'repaired') {
            const how = r.repair.how === 'therapist_strategy' ? m.strategyLabel(r.repair.strategy) : REPAIR_HOW[r.repair.how] || r.repair.how;
            status = `repaired after ${formatDuration(r.repair.time_to_repair_ms)} (${how})`;
          } else if (r.status === 'open') status = `open for ${formatDuration(at - r.opened_at) || '0 s'}`;
          else status = r.status;
          return h(
            'li',
            { class: `rupture-item ${r.status}`, dataset: { rupture: String(r.id) } },
            h('span', { class: 'time' }, formatClock(r.opened_at)),
            h('span', { class: 'what' }, h('strong', {}, `${RUPTURE_KIND[r.kind] || r.kind}: ${m.markerLabel(r.marker)}`), ` · ${staffRoleName(r.who)} with ${staffRoleName(r.with)}`),
            h('span', { class: `chip ${r.status}` }, status),
          );
        }),
      ),
    );
  }

  renderSuspicions(m, state) {
    const list = Array.isArray(state.suspicions) ? state.suspicions : [];
    if (!list.length) {
      replaceChildren(this.suspicionsEl, h('p', { class: 'hint' }, 'No suspicions up to here.'));
      return;
    }
    const n = (st) => list.filter((sp) => sp.status === st).length;
    replaceChildren(
      this.suspicionsEl,
      h('p', { class: 'suspicion-counts' }, ['suspected', 'confirmed', 'dismissed'].map((st) => [h('span', { class: `chip ${st}`, dataset: { count: st } }, `${n(st)} ${st}`), ' '])),
      h(
        'ol',
        { class: 'suspicion-list' },
        [...list]
          .sort((a, b) => a.raised_seq - b.raised_seq)
          .map((sp) =>
            h(
              'li',
              { class: `suspicion-item ${sp.status}`, dataset: { suspicion: String(sp.id) } },
              h('span', { class: 'time' }, formatClock(sp.raised_at)),
              h('span', { class: 'what' }, h('strong', {}, `${RUPTURE_KIND[sp.kind] || sp.kind}: ${m.markerLabel(sp.marker)}`), sp.class ? ` (${sp.class})` : '', ` · ${staffRoleName(sp.who)} with ${staffRoleName(sp.with)}`),
              h('span', { class: `chip ${sp.status}` }, sp.status === 'confirmed' && sp.rupture_id ? `confirmed as rupture ${sp.rupture_id}` : sp.status),
            ),
          ),
      ),
    );
  }

  renderPrivate(m, state) {
    const items = [];
    if (state.checkin) {
      for (const r of ['partner_a', 'partner_b']) {
        const p = m.checkinOf(r);
        if (!p || !p.answered) continue;
        const list = m.describeAnswers(p.answers);
        const holds = p.hold !== undefined ? p.hold : list.some((a) => a.holds);
        const answers = list.map((a) => `${a.question} ${a.answer}`).join('; ');
        items.push(
          h(
            'li',
            { class: `note private-item${holds ? ' holds' : ''}`, dataset: { partner: r } },
            h('strong', {}, `${staffRoleName(r)}'s check-in`),
            holds ? h('span', { class: 'chip hold' }, 'held the session') : null,
            h('p', {}, answers || 'answered'),
            p.note ? h('p', {}, `Note: “${p.note}”`) : null,
          ),
        );
      }
    }
    for (const [seq, e] of m.ofType('private_message', 'therapist_requested')) {
      items.push(h('li', { class: 'note private-item', dataset: { seq: String(seq) } }, h('span', { class: 'time' }, formatClock(e.at)), h('p', {}, logText(m, e).replace(/^Private: /, ''))));
    }
    replaceChildren(this.privateEl, items.length ? h('ol', { class: 'notes-list' }, items) : h('p', { class: 'hint' }, 'Nothing private up to here.'));
  }

  /** The latest notes up to here (a long session's hundreds would make
   * every step of the scrubber redraw them all; the report lists every one). */
  renderNotes(m) {
    const all = m.notes();
    const lastSeq = all.length ? all[all.length - 1][0] : 0;
    if (this.notesShown === lastSeq) return; // the same notes as the step before
    this.notesShown = lastSeq;
    const notes = all.slice(-NOTES_SHOWN);
    const earlier = all.length - notes.length;
    replaceChildren(
      this.notesEl,
      earlier ? h('p', { class: 'hint' }, `${earlier} earlier ${earlier === 1 ? 'note' : 'notes'} (the report lists every one); the latest ${notes.length}:`) : null,
      notes.length
        ? h(
            'ol',
            { class: 'notes-list' },
            notes.map(([seq, e]) =>
              h('li', { class: 'note', dataset: { seq: String(seq) } }, h('span', { class: 'time' }, formatClock(e.at)), e.rupture_id ? h('span', { class: 'chip' }, `rupture ${e.rupture_id}`) : null, h('p', {}, e.text)),
            ),
          )
        : h('p', { class: 'hint' }, 'No notes up to here.'),
    );
  }

  jumpRupture(dir) {
    const events = this.log.events;
    let i = this.pos + dir;
    while (i >= 0 && i < events.length && !OPENINGS.has(events[i].event.type)) i += dir;
    if (i < 0 || i >= events.length) {
      announce(dir > 0 ? 'No later rupture.' : 'No earlier rupture.');
      return;
    }
    this.pause();
    this.setPos(i, 'jump');
  }

  play() {
    if (this.log.length < 2) return;
    if (this.pos >= this.log.length - 1 && this.log.complete) this.setPos(0, 'init');
    this.playing = true;
    this.playButton.textContent = 'Pause';
    announce(`Playing at ${this.speed}x.`);
    this.schedule();
  }

  schedule() {
    if (!this.playing) return;
    const events = this.log.events;
    if (this.pos >= events.length - 1) {
      if (!this.log.complete && !this.loadError) {
        this.waitingForMore = true; // grew() goes on when the next page is here
        return;
      }
      this.pause();
      announce('End of the session.');
      return;
    }
    const gap = events[this.pos + 1].event.at - events[this.pos].event.at;
    const wait = Math.max(Math.min(Math.max(gap, 0), MAX_GAP_MS) / this.speed, MIN_WAIT_MS);
    this.timer = setTimeout(() => {
      this.setPos(this.pos + 1, 'play');
      this.schedule();
    }, wait);
  }

  /** Stops playing; `say` announces where it stopped. */
  pause(say) {
    clearTimeout(this.timer);
    this.waitingForMore = false;
    if (!this.playing) return;
    this.playing = false;
    this.playButton.textContent = 'Play';
    if (say) this.setPos(this.pos, 'pause');
  }
}

async function start() {
  const roomId = new URLSearchParams(location.search).get('room');
  await startStaffPage();
  if (!roomId) {
    problem('Which session?', 'This page needs a room. Open a replay from your rooms.');
    return;
  }
  document.getElementById('report-link').href = `report.html?room=${encodeURIComponent(roomId)}`;
  // The first page is shown at once; the rest load in order behind it.
  let replay = null;
  let log;
  try {
    log = await SessionLog.load(roomId, { onPage: () => replay && replay.grew() });
  } catch (err) {
    problem('This session could not be opened', apiProblem(err));
    return;
  }
  if (!log.length) {
    problem('Nothing recorded yet', 'This room has no events to replay yet.');
    return;
  }
  document.title = `Replay · ${log.exercise.title} · Attune`;
  replay = new Replay(log);
  log.loading.then(
    () => replay.grew(),
    (err) => replay.loadFailed(err),
  );
}

start();
