/*
 * Behaviour shared by every page, loaded from this origin (the Content-Security-Policy
 * allows no inline script or event handler attribute).
 *
 * The language menu submits its form when a language is chosen; without script
 * the <noscript> button does it.
 */
(function () {
  "use strict";

  function start() {
    var locale = document.getElementById("locale");
    if (locale && locale.form) {
      locale.addEventListener("change", function () {
        locale.form.submit();
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
