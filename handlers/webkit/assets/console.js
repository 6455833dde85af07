// console pages: progressive enhancement only; every page works without it.
// - asks to confirm the actions that tell the person (deny, close, cancel);
// - keeps a form from being sent twice while the first send is under way;
// - refreshes the queue's countdowns every minute, from the due dates.
(function () {
  "use strict";

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.classList.contains("confirm") && !window.confirm(form.getAttribute("data-confirm") || "")) {
      e.preventDefault();
      return;
    }
    if (form.method.toLowerCase() !== "post") return;
    if (form.getAttribute("data-sent") === "1") {
      e.preventDefault();
      return;
    }
    form.setAttribute("data-sent", "1");
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) buttons[i].setAttribute("aria-disabled", "true");
  });

  // A page shown again from the back-forward cache may be sent again.
  window.addEventListener("pageshow", function () {
    var sent = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < sent.length; i++) {
      sent[i].removeAttribute("data-sent");
      var buttons = sent[i].querySelectorAll("button[aria-disabled]");
      for (var j = 0; j < buttons.length; j++) buttons[j].removeAttribute("aria-disabled");
    }
  });

  // The error summary takes the focus, so a screen reader reads it first.
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();

  var queue = document.getElementById("queue");
  if (!queue) return;
  var DAY = 86400000;
  function dayOf(t) { return Math.floor(t / DAY); }
  function text(key, n) { return (queue.getAttribute("data-" + key) || "").replace("%d", String(n)); }
  function refresh() {
    var now = Date.now();
    var cells = queue.querySelectorAll("td.countdown[data-due]");
    for (var i = 0; i < cells.length; i++) {
      var cell = cells[i];
      var due = Date.parse(cell.getAttribute("data-due"));
      if (isNaN(due)) continue;
      var days = dayOf(due) - dayOf(now);
      var late = now > due;
      var t;
      if (late) {
        t = -days <= 0 ? text("overdue-today") : -days === 1 ? text("overdue-one") : text("overdue-many", -days);
      } else {
        t = days <= 0 ? text("due-today") : days === 1 ? text("due-tomorrow") : text("due-days", days);
      }
      if (t && cell.textContent !== t) cell.textContent = t;
      cell.classList.toggle("overdue", late);
      if (cell.parentElement) cell.parentElement.classList.toggle("overdue", late);
    }
  }
  window.setInterval(refresh, 60000);
})();
