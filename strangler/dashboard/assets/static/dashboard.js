// The dashboard's buttons: each form of class "admin" is sent to the admin
// API as JSON with the pasted token as a bearer token and the reason. The
// token lives in its input only: it is never stored, put in a URL or sent
// anywhere but to the admin API of this origin. After a change, and every
// 10 seconds, the page's data is fetched again and swapped in (the token
// and reason inputs stay).
'use strict';
(function () {
  const token = document.getElementById('token');
  const reason = document.getElementById('reason');
  const result = document.getElementById('result');

  function enable() {
    const on = token !== null && token.value.trim() !== '';
    document.querySelectorAll('form.admin button').forEach(function (b) { b.disabled = !on; });
  }

  async function refresh() {
    const resp = await fetch(location.pathname + location.search, { cache: 'no-store', credentials: 'omit' });
    if (!resp.ok) { return; }
    const doc = new DOMParser().parseFromString(await resp.text(), 'text/html');
    const fresh = doc.getElementById('live');
    if (fresh) {
      document.getElementById('live').replaceWith(document.importNode(fresh, true));
      enable();
    }
  }

  function say(ok, text) {
    result.textContent = text;
    result.className = ok ? 'ok' : 'error';
  }

  async function send(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name) { continue; }
      body[el.name] = el.type === 'number' || el.name === 'rev' ? Number(el.value) : el.value;
    }
    if (body.state !== undefined && body.state !== 'canary') { body.percent = 0; }
    body.reason = reason.value;
    let resp;
    try {
      resp = await fetch(form.getAttribute('action'), {
        method: 'POST',
        headers: { 'Authorization': 'Bearer ' + token.value.trim(), 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      say(false, 'the admin API did not answer: ' + e);
      return;
    }
    const text = await resp.text();
    let msg = text;
    try {
      const j = JSON.parse(text);
      msg = j.message || j.error || text;
      if (j.problems) { msg += ': ' + j.problems.join('; '); }
    } catch (e) { /* not JSON: the text as it is */ }
    if (resp.status === 401) { msg = 'the token was refused (401): paste a valid access token'; }
    if (resp.status === 403) { msg = 'the token lacks the admin scope (403)'; }
    say(resp.ok, resp.status + ': ' + msg);
    if (resp.ok) {
      // The store has it at once; this instance follows within moments.
      await refresh();
      setTimeout(refresh, 1000);
      setTimeout(refresh, 3000);
    }
  }

  document.addEventListener('submit', function (ev) {
    const form = ev.target;
    if (!form.classList.contains('admin')) { return; }
    ev.preventDefault();
    if (token === null || token.value.trim() === '') { say(false, 'paste an admin token first'); return; }
    send(form);
  });
  if (token !== null) { token.addEventListener('input', enable); }
  enable();
  setInterval(function () { refresh().catch(function () {}); }, 10000);
})();
