/* Labeling screen: keyboard shortcuts, image zoom, dialogs and preloading. The page works without this
   file (plain form posts); with it a worker labels without the mouse and each submit swaps in the next
   pair through htmx. Keys are listed in the help overlay (?) in templates/annotate/label.html. */
(function () {
  "use strict";
  var current = 0;
  var zoomSide = null;
  var preloaded = [];

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function rows() { return $all("#label-pane .aspect"); }
  function openDialog() { return $("dialog[open]"); }
  function status(text) { var el = $("#form-status"); if (el) el.textContent = text || ""; }

  function focusRow(index) {
    var all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("is-current", i === current); });
    all[current].focus({ preventScroll: true });
    all[current].scrollIntoView({ block: "nearest" });
  }

  function scoreInputs(row) { return $all(".score-input", row); }
  function emptyScore(row) { return scoreInputs(row).filter(function (i) { return !i.value.trim(); })[0] || null; }

  // A row is answered once it has a choice and, when the campaign asks for them, both image scores.
  function rowDone(row) { return !!$("input[type=radio]:checked", row) && !emptyScore(row); }

  function firstUnanswered() {
    var all = rows();
    for (var i = 0; i < all.length; i++) if (!rowDone(all[i])) return i;
    return -1;
  }

  function advance() {
    var next = firstUnanswered();
    if (next === -1) { status("All answered: press Enter to submit."); focusRow(current); }
    else focusRow(next > current ? next : Math.min(current + 1, rows().length - 1));
  }

  function choose(value) {
    var row = rows()[current];
    if (!row) return;
    var input = $('input[value="' + value + '"]', row);
    if (!input) { status("Ties are not allowed in this campaign."); return; }
    input.checked = true;
    row.classList.remove("has-error");
    status("");
    var scores = scoreInputs(row);
    if (scores.length) {  // digits come next: left image's score, then the right one's
      (emptyScore(row) || scores[0]).focus();
      status("Type the scores: left image, then right image.");
      return;
    }
    advance();
  }

  // A digit typed in a score box sets its value (0 means 10 on a 1-10 scale) and moves on.
  function typeScore(input, key) {
    var box = input.closest(".scores");
    var low = Number(box.dataset.min), high = Number(box.dataset.max);
    var value = key === "0" && high === 10 ? 10 : Number(key);
    if (value < low || value > high) { status("Scores go from " + low + " to " + high + "."); return; }
    input.value = String(value);
    status("");
    var inputs = scoreInputs(input.closest(".aspect"));
    var at = inputs.indexOf(input);
    if (at < inputs.length - 1) inputs[at + 1].focus();
    else advance();
  }

  function submit() {
    var form = $("#label-form");
    if (!form || form.dataset.busy === "1") return;  // a second Enter while the first is in flight
    var missing = firstUnanswered();
    if (missing !== -1) {
      focusRow(missing);
      var row = rows()[missing];
      if ($("input[type=radio]:checked", row) && emptyScore(row)) { emptyScore(row).focus(); status("Score both images first."); }
      else status("Answer every aspect first.");
      return;
    }
    var required = $all("textarea[required]", form).filter(function (t) { return !t.value.trim(); });
    if (required.length) { var row = required[0].closest(".aspect"); focusRow(rows().indexOf(row)); required[0].focus(); status("A reason is required."); return; }
    form.dataset.busy = "1";
    form.requestSubmit();
  }

  function zoom(side) {
    var dialog = $("#zoom-dialog");
    var link = $('#label-pane [data-zoom="' + side + '"]');
    if (!dialog || !link) return;
    if (dialog.open && zoomSide === side) { dialog.close(); return; }
    zoomSide = side;
    $("img", dialog).src = link.getAttribute("href");
    $(".zoom-caption span", dialog).textContent = side === "left" ? "Left image" : "Right image";
    if (!dialog.open) dialog.showModal();
  }

  function show(id) { var d = document.getElementById(id); if (d && !d.open) d.showModal(); }

  function preload(pane) {
    var urls = (pane.dataset.preload || "").split(" ").filter(Boolean);
    preloaded = urls.map(function (url) { var img = new Image(); img.decoding = "async"; img.src = url; return img; });
  }

  function init() {
    var pane = $("#label-pane");
    if (!pane) return;
    preload(pane);
    // The skip dialog comes once with the page; each pane says which pair it skips.
    var skipForm = $("#skip-form");
    if (skipForm && pane.dataset.skip) skipForm.action = pane.dataset.skip;
    var withError = rows().findIndex(function (r) { return r.classList.contains("has-error"); });
    var start = withError !== -1 ? withError : Math.max(0, firstUnanswered());
    focusRow(start);
  }

  function onKey(event) {
    if (event.altKey || event.metaKey) return;
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"));
    var dialog = openDialog();
    if (!dialog && target && target.classList && target.classList.contains("score-input") && !event.ctrlKey) {
      if (/^[0-9]$/.test(event.key)) { event.preventDefault(); typeScore(target, event.key); return; }
      if (event.key === "Escape") { event.preventDefault(); target.blur(); focusRow(current); return; }
      if (event.key === "Backspace" || event.key === "Delete" || event.key === "Tab") return;
      // Anything else (a new choice, moving between aspects, Enter) works as it does on the aspect.
    }
    if (typing) {
      if (event.key === "Escape") { event.preventDefault(); target.blur(); focusRow(current); }
      else if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); submit(); }
      return;
    }
    if (event.ctrlKey) return;
    if (dialog) {
      if (dialog.id === "zoom-dialog" && (event.key === "1" || event.key === "2")) { event.preventDefault(); zoom(event.key === "1" ? "left" : "right"); }
      else if (dialog.id === "skip-dialog" && /^[1-9]$/.test(event.key)) {
        var reasons = $all("input[name=reason]", dialog);
        var pick = reasons[Number(event.key) - 1];
        if (pick) { pick.checked = true; pick.focus(); event.preventDefault(); }
      } else if (dialog.id === "skip-dialog" && event.key === "Enter") {
        event.preventDefault(); $("form", dialog).requestSubmit();
      } else if (event.key === "?" && dialog.id === "help-dialog") { dialog.close(); }
      return;  // Escape closes dialogs natively
    }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var handled = true;
    switch (key) {
      case "a": case "ArrowLeft": choose("left"); break;
      case "s": case "t": choose("tie"); break;
      case "d": case "ArrowRight": choose("right"); break;
      case "ArrowUp": case "k": focusRow(current - 1); break;
      case "ArrowDown": case "j": focusRow(current + 1); break;
      case "Enter":
        if (target && target.tagName === "BUTTON" && target.type === "button") { handled = false; break; }
        submit(); break;
      case "r": {
        var row = rows()[current];
        var box = row && $(".rationale", row);
        if (box) { box.classList.add("open"); $("textarea", box).focus(); }
        break;
      }
      case "1": zoom("left"); break;
      case "2": zoom("right"); break;
      case "x": show("skip-dialog"); break;
      case "u": { var undo = $("#undo-button"); if (undo) { status("Undoing…"); undo.click(); } else status("Nothing to undo."); break; }
      case "g": show("guidelines-dialog"); break;
      case "?": show("help-dialog"); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  }

  document.addEventListener("keydown", onKey);

  document.addEventListener("click", function (event) {
    var action = event.target.closest("[data-action]");
    var zoomLink = event.target.closest("[data-zoom]");
    var closer = event.target.closest("[data-close]");
    if (zoomLink) { event.preventDefault(); zoom(zoomLink.dataset.zoom); }
    else if (closer) { closer.closest("dialog").close(); }
    else if (action) {
      var name = action.dataset.action;
      if (name === "skip") show("skip-dialog");
      else if (name === "help") show("help-dialog");
      else if (name === "guidelines") show("guidelines-dialog");
    } else if (event.target.tagName === "DIALOG") {
      event.target.close();  // a click on the backdrop
    } else {
      var row = event.target.closest("#label-pane .aspect");
      if (row) { current = rows().indexOf(row); rows().forEach(function (r, i) { r.classList.toggle("is-current", i === current); }); }
    }
  });

  // With htmx, a skip swaps in the next pane like a submit; without it the form posts as a page.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "skip-form" || !window.htmx) return;
    event.preventDefault();
    form.closest("dialog").close();
    window.htmx.ajax("POST", form.action, { source: form, target: "#label-pane", swap: "outerHTML" });
  });

  document.addEventListener("change", function (event) {
    var row = event.target.closest && event.target.closest(".aspect");
    if (row && event.target.type === "radio") row.classList.remove("has-error");
  });

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var form = $("#label-form");
    if (xhr.status < 400) return;
    if (form) delete form.dataset.busy;
    if (xhr.status === 422) { event.detail.shouldSwap = true; event.detail.isError = false; return; }
    // Refused (not yours, expired and reassigned, blocked): say why, then load whatever is next.
    var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    var text = doc.querySelector("p") ? doc.querySelector("p").textContent : "Not saved.";
    status(text);
    if (xhr.status === 409 || xhr.status === 404) {
      setTimeout(function () { window.htmx.ajax("GET", window.location.pathname, { target: "#label-pane", swap: "outerHTML" }); }, 1500);
    }
  });

  document.body.addEventListener("htmx:sendError", function () {
    var form = $("#label-form");
    if (form) delete form.dataset.busy;
    status("Network problem: your answers are kept; press Enter to try again.");
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "label-pane" || $("#label-pane")) {
      var dialog = $("#zoom-dialog");
      if (dialog && dialog.open) dialog.close();
      init();
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
