// The console's only script: the live notice. A page with a #live element watches the
// change feed (/ui/changes, under the session) and says when what it shows changed
// elsewhere. Everything else works without it.
"use strict";

(function () {
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

  function focusProblem() {
    const problem = document.getElementById("conflict") || document.getElementById("error-summary");
    if (problem) problem.focus();
  }

  function notice(live, text) {
    live.replaceChildren();
    const box = document.createElement("p");
    box.className = "banner notice";
    box.append(text + " ");
    const reload = document.createElement("a");
    reload.href = window.location.pathname;
    reload.textContent = "Reload";
    box.append(reload);
    live.append(box);
  }

  async function watch(live) {
    let since = Number(live.dataset.since || 0);
    const provider = live.dataset.provider;
    const shownEtag = live.dataset.etag;
    const editing = live.dataset.editing === "true";
    for (;;) {
      let answer;
      try {
        const response = await fetch("/ui/changes?since=" + since, {
          credentials: "same-origin",
          headers: { accept: "application/json" },
        });
        if (response.status === 401) {
          notice(live, "Your session has ended.");
          return;
        }
        if (!response.ok) {
          await sleep(5000);
          continue;
        }
        answer = await response.json();
      } catch (_) {
        await sleep(5000);
        continue;
      }
      const changes = answer.changes || [];
      since = changes.length ? changes[changes.length - 1].revision : answer.revision;
      const relevant = changes.filter(
        (c) => (!provider || c.provider === provider) && !(shownEtag && c.etag === shownEtag),
      );
      if (relevant.length === 0) continue;
      const last = relevant[relevant.length - 1];
      if (provider) {
        notice(
          live,
          editing
            ? `${provider} was changed elsewhere (revision ${last.revision}, ${last.action}) since this form was opened: saving will show you what changed.`
            : `${provider} was changed elsewhere (revision ${last.revision}, ${last.action}).`,
        );
      } else {
        notice(live, `${relevant.length} change${relevant.length === 1 ? "" : "s"} elsewhere since this page was loaded (last: ${last.provider}, ${last.action}).`);
      }
      if (editing || provider) return;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    focusProblem();
    const live = document.getElementById("live");
    if (live) watch(live);
  });
})();
