/* Small enhancements of server-rendered pages; every page works without them. */
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Countdown of a hold. The server renders "held until HH:MM" and the seconds
  // left (its own clock is the truth); this only counts them down and reloads
  // the page when the hold runs out, so the server shows what happened.
  function startCountdown(el) {
    var left = parseInt(el.getAttribute("data-countdown"), 10);
    if (isNaN(left) || left <= 0) { return; }
    var deadline = Date.now() + left * 1000;
    var label = el.getAttribute("data-label") || "{time}";
    el.hidden = false;
    function tick() {
      var s = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      if (s <= 0) {
        window.clearInterval(timer);
        el.textContent = el.getAttribute("data-expired-label") || "";
        window.setTimeout(function () { window.location.reload(); }, 1000);
        return;
      }
      el.textContent = label.replace("{time}", Math.floor(s / 60) + ":" + pad(s % 60));
      el.classList.toggle("urgent", s <= 120);
    }
    var timer = window.setInterval(tick, 1000);
    tick();
  }

  function init() {
    document.querySelectorAll("[data-countdown]").forEach(startCountdown);
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
