// The queue page's live table (channels.page): refreshes the rows from /queue/rows every
// few seconds and when a filter changes, without reloading the page. No framework.
"use strict";
(function () {
  const form = document.getElementById("filters");
  const rows = document.getElementById("queue-rows");
  const status = document.getElementById("queue-status");
  if (!form || !rows || !status) {
    return; // not the queue page
  }
  const seconds = Math.max(1, Number(rows.dataset.refreshSeconds) || 15);
  let timer = null;
  let pending = null;

  function query() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (value !== "") {
        params.append(name, String(value));
      }
    }
    return params.toString();
  }

  async function refresh() {
    if (pending) {
      pending.abort();
    }
    pending = new AbortController();
    try {
      const answer = await fetch("/queue/rows?" + query(), {
        credentials: "same-origin",
        cache: "no-store",
        signal: pending.signal,
      });
      if (answer.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (!answer.ok) {
        throw new Error("the server answered " + answer.status);
      }
      // The server renders and escapes the rows; they are inserted as it sent them.
      rows.innerHTML = await answer.text();
      status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      status.classList.remove("stale");
    } catch (error) {
      if (error.name === "AbortError") {
        return;
      }
      status.textContent = "Could not update (" + error.message + "); trying again.";
      status.classList.add("stale");
    }
  }

  function restart() {
    window.clearInterval(timer);
    timer = window.setInterval(function () {
      if (!document.hidden) {
        refresh();
      }
    }, seconds * 1000);
  }

  function applyFilters(event) {
    if (event) {
      event.preventDefault();
    }
    const search = query();
    window.history.replaceState(null, "", search ? "/?" + search : "/");
    refresh();
    restart();
  }

  form.addEventListener("change", applyFilters);
  form.addEventListener("submit", applyFilters);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh();
    }
  });
  restart();
})();

// Times on the page are shown in the agent's zone: their own setting (`intake agents zone`)
// when they chose one, else the browser's. The server cannot know the browser's zone, so
// this tells it in a cookie and reloads once; a zone the server does not take is not
// sent again (no reload loop).
(function () {
  const body = document.body;
  if (!body || body.dataset.zoneSource === "agent") {
    return;
  }
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return; // no Intl: the server's default (UTC) stands
  }
  // IANA names are letters, digits and "/_+-": a cookie value as they are.
  if (!/^[A-Za-z0-9_+\/-]{1,64}$/.test(zone) || body.dataset.zone === zone) {
    return;
  }
  const cookie = "intake_zone=" + zone;
  if (document.cookie.split("; ").indexOf(cookie) !== -1) {
    return; // sent before, and the server kept another zone
  }
  document.cookie = cookie + "; path=/; max-age=31536000; samesite=strict";
  if (body.dataset.zone) {
    window.location.reload(); // a page that shows times: show them in this zone
  }
})();
