/*
 * Behaviour shared by every page, loaded from this origin (the Content-Security-Policy
 * allows no inline script or event handler attribute).
 *
 * The language menu no longer submits itself on "change": arrowing through a <select>
 * fires "change" at every step in some browsers, so the page reloaded under the user's
 * fingers. Its form has a button of its own (base.html); nothing here is needed for it.
 */
(function () {
  "use strict";
})();
