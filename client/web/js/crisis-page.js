// The crisis page: "Leave quickly" (quick-exit.js), then the practice's own
// lines from GET /api/crisis (attune-server --crisis-file) shown first,
// above the page's built-in international directory. Without a crisis file,
// or when the server cannot be reached, the built-in directory stands alone.
// Everything from the file is inserted as text, never as markup.

import { h, replaceChildren } from './dom.js';
import { installQuickExit, loadCrisisConfig } from './quick-exit.js';

/** tel:/sms: target: digits, + # * only; null when the number has letters. */
function dialable(number) {
  if (/[A-Za-z]/.test(number)) return null;
  const digits = number.replace(/[^0-9+#*]/g, '');
  return digits ? digits : null;
}

function numberLink(scheme, number) {
  const target = dialable(number);
  const strong = h('strong', {}, number);
  return target ? h('a', { href: `${scheme}:${encodeURIComponent(target).replace(/%2B/g, '+')}` }, strong) : strong;
}

function safeUrl(text) {
  try {
    const u = new URL(text);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

function lineItem(line) {
  const parts = [h('strong', {}, line.name)];
  const ways = [];
  if (line.phone) ways.push(['call ', numberLink('tel', line.phone)]);
  if (line.text) {
    ways.push(line.text_keyword
      ? ['text ', h('strong', {}, line.text_keyword), ' to ', numberLink('sms', line.text)]
      : ['text ', numberLink('sms', line.text)]);
  }
  if (ways.length) {
    parts.push(': ');
    ways.forEach((w, i) => parts.push(i ? ' or ' : '', ...w));
  }
  if (line.hours) parts.push(`, ${line.hours}`);
  parts.push('.');
  if (line.description) parts.push(' ', line.description);
  const url = line.url && safeUrl(line.url);
  if (url) parts.push(' ', h('a', { href: url, rel: 'noreferrer' }, new URL(url).host.replace(/^www\./, '')));
  return h('li', {}, ...parts);
}

function renderPractice(el, c) {
  const lines = Array.isArray(c.lines) ? c.lines : [];
  const abuse = Array.isArray(c.domestic_abuse) ? c.domestic_abuse : [];
  if (!c.configured || (!lines.length && !abuse.length && !c.emergency && !c.note)) return;
  const title = c.country ? `From your therapist’s practice: ${c.country}` : 'From your therapist’s practice';
  replaceChildren(
    el,
    h('h2', { id: 'practice-title' }, title),
    c.note ? h('p', {}, c.note) : null,
    c.emergency ? h('p', {}, 'In an emergency, call ', numberLink('tel', c.emergency), '.') : null,
    lines.length ? h('h3', {}, 'To talk to someone') : null,
    lines.length ? h('ul', { class: 'consent-list help-list' }, lines.map(lineItem)) : null,
    abuse.length ? h('h3', {}, 'If someone at home hurts or frightens you') : null,
    abuse.length ? h('ul', { class: 'consent-list help-list' }, abuse.map(lineItem)) : null,
    c.checked ? h('p', { class: 'hint' }, `Your therapist’s practice last checked these on ${c.checked}.`) : null,
    h('p', { class: 'hint directory-intro' }, 'More lines, for wherever you are:'),
  );
  el.hidden = false;
}

installQuickExit({ button: document.getElementById('quick-exit') });
loadCrisisConfig().then((c) => {
  if (c) renderPractice(document.getElementById('practice-lines'), c);
});
