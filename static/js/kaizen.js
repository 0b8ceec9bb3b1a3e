// Small glue for htmx: show errors in words, and let 422 answers (a form with
// errors) replace the fragment like a success does.
(function () {
  "use strict";
  const toast = () => document.getElementById("htmx-error");

  function show(message) {
    const box = toast();
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    if (status === 403) show("You may not do that: your role does not allow it.");
    else if (status === 404) show("That item no longer exists. Reload the page.");
    else if (status === 401 || status === 302) show("Your session ended. Sign in again.");
    else show(`The server could not do that (HTTP ${status}). Try again, or reload the page.`);
  });

  document.addEventListener("htmx:sendError", () => {
    show("Kaizen could not be reached. Check your connection and try again.");
  });
})();
