/* Small behaviours of the admin pages, without inline scripts (so a strict Content-Security-Policy holds):
   - data-confirm="question" on a submit button or form asks before submitting;
   - data-check-all="name" on a checkbox ticks every checkbox named `name`;
   - data-copy="#selector" on a button copies that element's text. */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var asker = event.target.closest("[data-confirm]");
    if (asker && asker.tagName !== "FORM" && !asker.hasAttribute("hx-post") && !window.confirm(asker.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    var all = event.target.closest("[data-check-all]");
    if (all) {
      document.querySelectorAll('input[type=checkbox][name="' + all.dataset.checkAll + '"]').forEach(function (box) { box.checked = all.checked; });
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.dataset.copy);
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.value || source.textContent).then(function () { copy.textContent = "Copied"; });
      }
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
