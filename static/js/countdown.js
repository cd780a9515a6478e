/* Keeps the relative times of deadlines current in an open page: each
 * <span class="countdown" data-until="ISO 8601"> holds the server's "3 days, 2 hours"
 * (Django's timeuntil), and this script rewrites it every 30 seconds in the same words.
 *
 * Only under four weeks: beyond, Django counts calendar months, which this does not.
 * Without JavaScript the server's text stays, as true as when the page was made.
 */
(function () {
  "use strict";

  var UNITS = [
    [7 * 24 * 3600, "week"],
    [24 * 3600, "day"],
    [3600, "hour"],
    [60, "minute"],
  ];
  var NBSP = "\u00a0";
  var FOUR_WEEKS = 28 * 24 * 3600;

  function words(seconds) {
    // Django's timesince: the first non-zero unit and, if not zero, the one just after it.
    var parts = [];
    for (var i = 0; i < UNITS.length && parts.length < 2; i++) {
      var count = Math.floor(seconds / UNITS[i][0]);
      if (parts.length === 1 && count === 0) break;
      if (count > 0) {
        parts.push(count + NBSP + UNITS[i][1] + (count === 1 ? "" : "s"));
        seconds -= count * UNITS[i][0];
      }
    }
    return parts.length ? parts.join(", ") : "0" + NBSP + "minutes";
  }

  function update() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-until]").forEach(function (el) {
      // Django writes microseconds; Date.parse wants at most milliseconds.
      var until = Date.parse(el.dataset.until.replace(/(\.\d{3})\d+/, "$1"));
      if (isNaN(until)) return;
      var left = Math.max(0, Math.floor((until - now) / 1000));
      if (left < FOUR_WEEKS) el.textContent = words(left);
    });
  }

  update();
  window.setInterval(update, 30000);
})();
