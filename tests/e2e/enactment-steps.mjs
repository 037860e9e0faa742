// Steps of an Enactment session in the room page, for the browser tests:
// consent and the private safety check-in; the speaker shares, the listener
// reflects (optionally rejected once or more and tried again), responds, and
// the speaker rates the connection; and the therapist marking a rupture, a
// private note and the repair of an open rupture. Each participant is `{ page }`.

/** Waits until the turn bar says whose turn it is and the step title. */
export async function waitTurn(p, who, stepTitle) {
  await p.page.waitForFunction(
    ([w, s]) => {
      const el = document.querySelector('.turn-who');
      return el && el.textContent.includes(w) && el.textContent.includes(s);
    },
    [who, stepTitle],
    { timeout: 10000 },
  );
}

/** A partner answers the safety check-in (by the option's label) and sends it. */
export async function checkIn(p, answer = 'Yes', note) {
  const card = p.page.locator('.checkin');
  await card.getByRole('radio', { name: answer, exact: true }).check();
  if (note) await card.getByRole('textbox').fill(note);
  await card.getByRole('button', { name: 'Send to my therapist only' }).click();
  // The neutral waiting screen, or (the last clear answer) the joint session at once.
  await p.page.waitForFunction(() => {
    const c = document.querySelector('.checkin');
    return !c || c.hidden || /One moment/.test(c.textContent);
  });
}

/** Both partners agree and answer the check-in "Yes": the joint session begins. */
export async function consentAndCheckIn(A, B) {
  for (const p of [A, B]) {
    await p.page.getByRole('heading', { name: 'Before we begin' }).first().waitFor();
    await p.page.getByRole('button', { name: /I agree/ }).click();
  }
  for (const p of [A, B]) {
    await p.page.locator('.checkin').getByRole('radio', { name: 'Yes', exact: true }).waitFor();
    await checkIn(p, 'Yes');
  }
}

/** The therapist marks a rupture (kind, 3RS marker label, who, with) with an optional note. */
export async function markRupture(T, { kind = 'Withdrawal', marker, who = 'partner_a', withRole, note } = {}) {
  const form = T.page.locator('.mark-form');
  await form.getByRole('radio', { name: kind }).check();
  if (marker) await form.getByRole('combobox', { name: '3RS marker' }).selectOption({ label: marker });
  await form.getByRole('combobox', { name: 'Who' }).selectOption(who);
  if (withRole) await form.getByRole('combobox', { name: 'With' }).selectOption(withRole);
  if (note) await form.getByRole('textbox', { name: /Note/ }).fill(note);
  const before = await T.page.locator('.rupture-banner.open').count();
  await form.getByRole('button', { name: 'Mark rupture' }).click();
  await T.page.waitForFunction((n) => document.querySelectorAll('.rupture-banner.open').length > n, before);
}

export function textbox(p, name) {
  return p.page.getByRole('textbox', { name });
}

export async function share(p) {
  await p.page.getByRole('button', { name: 'Share', exact: true }).click();
}

/** Partner A, partner B and the therapist's room page all see the same step. */
export async function allSee({ A, B, T }, actorName, stepTitle, actor) {
  const nameFor = (viewer) => (viewer === actor ? 'Your turn' : actorName);
  await Promise.all([waitTurn(A, nameFor(A), stepTitle), waitTurn(B, nameFor(B), stepTitle), waitTurn(T, actorName, stepTitle)]);
}

/**
 * The therapist, with a rupture open: saves a private note, then marks the
 * rupture repaired (by talking about what happened) with its own note.
 */
export async function noteAndRepair(T, note, repairNote) {
  await T.page.getByRole('textbox', { name: 'New note' }).fill(note);
  await T.page.getByRole('button', { name: 'Save note' }).click();
  await T.page.locator('.notes-list').getByText(note).waitFor();
  await T.page.getByRole('combobox', { name: 'How it was repaired' }).selectOption('discuss_what_happened');
  await T.page.locator('.rupture-banner.open').getByRole('textbox', { name: /Note/ }).fill(repairNote);
  await T.page.getByRole('button', { name: 'Mark repaired' }).click();
  await T.page.locator('.rupture-banner.open').waitFor({ state: 'detached' });
}

/**
 * One round: `words` holds what each says (happened, did, request,
 * reflection1, correction, reflection2, response, rating); `rejectOnce`
 * makes the speaker reject the first reflection, `rejections` (a number)
 * rejects that many reflections before accepting one.
 */
export async function speakerRound(people, speaker, listener, speakerName, listenerName, words, { rejectOnce, rejections } = {}) {
  const see = (who, title, actor) => allSee(people, who, title, actor);
  await see(speakerName, 'What happened', speaker);
  await textbox(speaker, 'What happened').fill(words.happened);
  await share(speaker);

  await see(speakerName, 'On the surface', speaker);
  await speaker.page.getByRole('radio', { name: new RegExp(`^${words.reactive}`) }).check();
  await textbox(speaker, /^What I did/).fill(words.did);
  await share(speaker);

  await see(speakerName, 'Underneath', speaker);
  await speaker.page.getByRole('radio', { name: new RegExp(`^${words.primary}`) }).check();
  await speaker.page.getByRole('slider', { name: /How strong is it now/ }).fill(String(words.intensity));
  await share(speaker);

  await see(speakerName, 'What you need', speaker);
  await speaker.page.getByRole('radio', { name: new RegExp(`^${words.need}`) }).check();
  await textbox(speaker, /^My request to you/).fill(words.request);
  await share(speaker);

  await see(listenerName, 'Reflect back', listener);
  await textbox(listener, 'What I heard you say').fill(words.reflection1);
  await share(listener);

  await see(speakerName, 'Did it land?', speaker);
  const times = rejections || (rejectOnce ? 1 : 0);
  for (let i = 0; i < times; i += 1) {
    await speaker.page.getByRole('radio', { name: 'Not quite' }).check();
    await textbox(speaker, /^What I'd add or correct/).fill(words.correction);
    await share(speaker);
    await see(listenerName, 'Reflect back', listener);
    await textbox(listener, 'What I heard you say').fill(words.reflection2);
    await share(listener);
    await see(speakerName, 'Did it land?', speaker);
  }
  await speaker.page.getByRole('radio', { name: "Yes, that's it" }).check();
  await share(speaker);

  await see(listenerName, 'Respond', listener);
  await textbox(listener, 'My response').fill(words.response);
  await share(listener);

  await see(speakerName, 'How connected?', speaker);
  await speaker.page.getByRole('radio', { name: String(words.rating), exact: true }).check();
  await share(speaker);
}
