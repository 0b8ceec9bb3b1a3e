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

  // A live log keeps at most data-max-lines lines in the page (a 100 000-line
  // log stays downloadable, not rendered), and follows its end unless the
  // reader scrolled up to read.
  function tidyLogs() {
    document.querySelectorAll(".log[data-max-lines]").forEach((log) => {
      const max = parseInt(log.dataset.maxLines, 10);
      const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      let extra = log.children.length - max;
      while (extra-- > 0 && log.firstElementChild) log.firstElementChild.remove();
      if (atEnd || log.dataset.follow === "start") {
        log.scrollTop = log.scrollHeight;
        log.dataset.follow = "true";
      }
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".log[data-max-lines]").forEach((log) => { log.dataset.follow = "start"; });
    tidyLogs();
  });
  document.addEventListener("htmx:oobAfterSwap", tidyLogs);

  // Bulk actions on a list: a header checkbox chooses every row on the page,
  // and the action select shows only the fields its action needs.
  document.addEventListener("change", (event) => {
    const all = event.target.closest("[data-check-all]");
    if (all) {
      const form = all.closest("form");
      form.querySelectorAll(`input[type=checkbox][name="${all.dataset.checkAll}"]`).forEach((box) => {
        box.checked = all.checked;
      });
    }
    if (event.target.matches("[data-bulk-action]")) showBulkFields(event.target);
  });
  function showBulkFields(select) {
    select.closest("form").querySelectorAll("[data-bulk-for]").forEach((field) => {
      field.hidden = field.dataset.bulkFor !== select.value;
    });
  }
  function tidyBulk() { document.querySelectorAll("[data-bulk-action]").forEach(showBulkFields); }
  document.addEventListener("DOMContentLoaded", tidyBulk);
  document.addEventListener("htmx:afterSwap", tidyBulk);

  // A table wider than its card scrolls inside it; the keyboard must reach it too.
  function focusableScrollers() {
    document.querySelectorAll("main table, main pre").forEach((table) => {
      if (table.scrollWidth > table.clientWidth + 1) table.tabIndex = 0;
      else table.removeAttribute("tabindex");
    });
  }
  document.addEventListener("DOMContentLoaded", focusableScrollers);
  document.addEventListener("htmx:afterSettle", focusableScrollers);
  window.addEventListener("resize", focusableScrollers);

  // A benchmark's form shows the fields of the chosen test type only (their inputs
  // disabled, so not sent, while hidden), and that type's defaults as placeholders.
  function showTestType(select) {
    const type = select.value;
    select.form.querySelectorAll("[data-test-types]").forEach((row) => {
      const shown = row.dataset.testTypes.split(" ").includes(type);
      row.hidden = !shown;
      row.querySelectorAll("input, select, textarea").forEach((input) => { input.disabled = !shown; });
    });
    select.form.querySelectorAll(`[data-default-${type}]`).forEach((input) => {
      input.placeholder = input.getAttribute(`data-default-${type}`);
    });
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-test-type]")) showTestType(event.target);
  });
  function tidyTestTypes() { document.querySelectorAll("[data-test-type]").forEach(showTestType); }
  document.addEventListener("DOMContentLoaded", tidyTestTypes);
  document.addEventListener("htmx:afterSettle", tidyTestTypes);

  // A new target's short name is made from its name: shown as the empty field's hint.
  document.addEventListener("input", (event) => {
    document.querySelectorAll(`[data-slug-from="${event.target.id}"]`).forEach((slug) => {
      slug.placeholder = event.target.value.normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
        .toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 50) || "target";
    });
  });

  // The Menu button of a narrow screen opens and folds the navigation.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-menu-toggle]");
    if (!button) return;
    const open = button.closest(".topbar").classList.toggle("open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });

  document.addEventListener("htmx:sendError", () => {
    show("Kaizen could not be reached. Check your connection and try again.");
  });
})();
