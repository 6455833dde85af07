// privacy pages: progressive enhancement only; every page works without it.
(function () {
  "use strict";

  // Global Privacy Control: tell the server (hidden gpc fields) and show
  // the notice saying the signal is honoured.
  if (navigator.globalPrivacyControl === true) {
    document.querySelectorAll('input[type=hidden][name=gpc]').forEach(function (el) { el.value = "1"; });
    var notice = document.getElementById("gpc-notice");
    if (notice) { notice.hidden = false; }
  }

  // The request form: the uses to stop concern an opt-out only, the
  // details to correct a correction only, the agent's fields an agent only.
  // A fieldset holding an error stays shown, whatever is chosen.
  var form = document.getElementById("request-form");
  if (form) {
    var scopes = document.getElementById("scope-fieldset");
    var corrections = document.getElementById("correction-fieldset");
    var agent = document.getElementById("agent");
    var agentFields = document.getElementById("agent-fields");
    var showFor = function (el, value, type) {
      if (el) { el.hidden = !(type && type.value === value) && !el.querySelector("[aria-invalid=true], .field-error"); }
    };
    var sync = function () {
      var type = form.querySelector("input[name=type]:checked");
      showFor(scopes, "opt_out", type);
      showFor(corrections, "correction", type);
      if (agent && agentFields) { agentFields.hidden = !agent.checked; }
    };
    form.addEventListener("change", sync);
    sync();
  }

  // The emailed link's page: the fragment (#request=..&token=..) never
  // reaches the server; move it into the form, then out of the address bar.
  var linkForm = document.getElementById("verify-link-form");
  if (linkForm) {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var id = params.get("request") || "";
    var token = params.get("token") || "";
    var nojs = document.getElementById("link-nojs");
    if (nojs) { nojs.hidden = true; }
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) && /^[A-Za-z0-9_-]{1,100}$/.test(token)) {
      linkForm.action = "/privacy/requests/" + id + "/verify";
      document.getElementById("link-token").value = token;
      linkForm.hidden = false;
    } else {
      var missing = document.getElementById("link-missing");
      if (missing) { missing.hidden = false; }
    }
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname);
    }
  }

  // Move focus to the error summary, so it is read first.
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.setAttribute("tabindex", "-1");
    summary.focus();
  }
})();
