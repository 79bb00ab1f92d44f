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

  // Money like the server's `money` filter: `zero` is its rendering of 0 in the event's currency
  // ("€0.00", "0 JPY", "0.00 CHF"), so symbol, place and decimals are the server's.
  function formatMoney(amount, zero) {
    var m = /0(?:([.,])(0+))?/.exec(zero);
    if (!m) { return String(amount); }
    var decimals = m[2] ? m[2].length : 0;
    var point = m[1] || ".";
    var parts = amount.toFixed(decimals).split(".");
    var number = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, point === "," ? "." : ",");
    if (decimals) { number += point + parts[1]; }
    return zero.slice(0, m.index) + number + zero.slice(m.index + m[0].length);
  }

  // The event page's total before reserving, from the prices on the page (display only: the
  // server prices the booking). The ticket rows are replaced by the availability poll, so the
  // total is computed again after each swap.
  function startLiveTotal(out) {
    var form = out.closest("form");
    var zero = out.getAttribute("data-money-zero") || "0.00";
    function update() {
      var thousandths = 0;
      form.querySelectorAll("input[data-price]").forEach(function (input) {
        var value = input.value.trim();
        if (input.disabled || !/^[0-9]{1,4}$/.test(value)) { return; }
        thousandths += parseInt(value, 10) * Math.round(parseFloat(input.getAttribute("data-price")) * 1000);
      });
      out.querySelector("strong").textContent = formatMoney(thousandths / 1000, zero);
      out.hidden = false;
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    document.body.addEventListener("htmx:afterSettle", update);
    update();
  }

  // A card number in groups of four as it is typed; the caret stays after the same digit.
  // The server takes it with or without the spaces.
  function formatCardNumber(input) {
    input.addEventListener("input", function () {
      var value = input.value;
      var caret = input.selectionStart === null ? value.length : input.selectionStart;
      var before = value.slice(0, caret).replace(/[^0-9]/g, "").length;
      var grouped = value.replace(/[^0-9]/g, "").slice(0, 19).replace(/([0-9]{4})(?=[0-9])/g, "$1 ");
      if (grouped === value) { return; }
      input.value = grouped;
      if (document.activeElement !== input) { return; }
      var pos = 0;
      for (var seen = 0; pos < grouped.length && seen < before; pos++) {
        if (grouped.charAt(pos) !== " ") { seen++; }
      }
      input.setSelectionRange(pos, pos);
    });
  }

  // The expiry as MM/YY: typing "1229" gives "12/29" (deleting is left alone).
  function formatExpiry(input) {
    input.addEventListener("input", function (event) {
      if (event.inputType && event.inputType.indexOf("insert") !== 0) { return; }
      if (/^[0-9]{3,6}$/.test(input.value)) {
        input.value = input.value.slice(0, 2) + "/" + input.value.slice(2);
      }
    });
  }

  function init() {
    document.querySelectorAll("[data-live-total]").forEach(startLiveTotal);
    document.querySelectorAll("input[data-card-number]").forEach(formatCardNumber);
    document.querySelectorAll("input[autocomplete='cc-exp']").forEach(formatExpiry);
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
