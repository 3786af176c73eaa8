// The staff console's only script (the CSP allows no other): the queue's live updates and the
// automatic-logoff warning. It stores nothing in the browser and sends nothing but same-origin requests.
"use strict";
(() => {
  const body = document.body;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const live = document.getElementById("live");
  const say = (text) => { if (live) { live.textContent = ""; setTimeout(() => { live.textContent = text; }, 50); } };

  // ---------------------------------------------------------------- automatic logoff
  const idle = Number(body.dataset.idleSeconds || 0);
  const dialog = document.getElementById("idle-warning");
  const leave = () => window.location.assign("/staff/login?reason=timeout");
  const remaining = async () => {
    try {
      const answer = await fetch("/staff/session", { credentials: "same-origin", cache: "no-store" });
      return answer.ok ? (await answer.json()).remaining : 0;
    } catch (error) {
      return 0;
    }
  };
  let warnTimer = 0, outTimer = 0, tick = 0;
  const schedule = (seconds) => {
    clearTimeout(warnTimer); clearTimeout(outTimer); clearInterval(tick);
    const warnBefore = Math.min(60, seconds / 2);
    warnTimer = setTimeout(warn, (seconds - warnBefore) * 1000);
    outTimer = setTimeout(check, seconds * 1000);
  };
  // Before warning and before leaving, ask the server: activity in another tab counts.
  async function warn() {
    const left = await remaining();
    if (left > 60 && left > idle / 2) { schedule(left); return; }
    if (left <= 0) { leave(); return; }
    const countdown = document.getElementById("idle-countdown");
    let shown = Math.round(left);
    countdown.textContent = String(shown);
    tick = setInterval(() => { shown = Math.max(0, shown - 1); countdown.textContent = String(shown); }, 1000);
    if (dialog && !dialog.open) dialog.showModal();
    say(`You will be signed out in ${shown} seconds without activity.`);
  }
  async function check() {
    const left = await remaining();
    if (left > 1) { if (dialog?.open) dialog.close(); schedule(left); } else leave();
  }
  if (idle > 0 && dialog) {
    document.getElementById("idle-stay").addEventListener("click", async () => {
      const answer = await fetch("/staff/session/extend", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      });
      if (!answer.ok) { leave(); return; }
      dialog.close();
      schedule((await answer.json()).remaining);
    });
    schedule(idle);
  }

  // ---------------------------------------------------------------- live queue
  const queue = document.getElementById("queue");
  if (!queue || !window.EventSource) return;
  const urgentIds = () => new Set(
    [...queue.querySelectorAll('tr[data-urgency="urgent"]')].map((row) => row.dataset.id));
  let known = urgentIds();
  async function refresh() {
    const selected = queue.dataset.selected;
    const answer = await fetch("/staff/queue" + (selected ? `?selected=${encodeURIComponent(selected)}` : ""),
      { credentials: "same-origin", cache: "no-store" });
    if (answer.status === 401) { leave(); return; }
    if (!answer.ok) return;
    const parsed = new DOMParser().parseFromString(await answer.text(), "text/html");
    queue.replaceChildren(...parsed.body.childNodes);
    const now = urgentIds();
    const fresh = [...now].filter((id) => !known.has(id));
    known = now;
    if (fresh.length) {
      body.classList.add("alerting");
      setTimeout(() => body.classList.remove("alerting"), 4000);
      say(fresh.length === 1 ? "New urgent escalation." : `${fresh.length} new urgent escalations.`);
    }
  }
  const source = new EventSource("/staff/events");
  source.addEventListener("queue", () => { refresh(); });
  source.addEventListener("logout", () => { source.close(); check(); });
})();
