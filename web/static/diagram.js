/*
 * The incident's process diagram: bpmn-js NavigatedViewer (pan and zoom), the
 * open tasks marked "current" and the passed ones "done".
 *
 * The page holds <div class="diagram" id="diagram" data-src="…diagram.json">;
 * the JSON is {xml, current: [ids], done: [ids], names: {id: label}} and, for
 * other pages, markers: {cssClass: [ids]}.  Labels arrive already translated
 * inside the XML (rewritten by the server).
 */
(function () {
  "use strict";

  function showMessage(container, text) {
    container.textContent = "";
    var p = document.createElement("p");
    p.className = "diagram-message";
    p.textContent = text;
    container.appendChild(p);
  }

  function mark(viewer, ids, marker) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    (ids || []).forEach(function (id) {
      if (registry.get(id)) {
        canvas.addMarker(id, marker);
      }
    });
  }

  function render(container, data) {
    var viewer = new window.BpmnJS({ container: container });
    return viewer.importXML(data.xml).then(function () {
      var canvas = viewer.get("canvas");
      canvas.zoom("fit-viewport", "auto");
      mark(viewer, data.done, "done");
      // An element both done before and waiting again (a loop) shows as current.
      mark(viewer, data.current, "current");
      Object.keys(data.markers || {}).forEach(function (marker) {
        mark(viewer, data.markers[marker], marker);
      });
      container.setAttribute("data-ready", "true");
      return viewer;
    });
  }

  function start() {
    var container = document.getElementById("diagram");
    if (!container) {
      return;
    }
    var failed = container.getAttribute("data-failed") || "The diagram could not be shown.";
    if (typeof window.BpmnJS !== "function") {
      showMessage(container, failed);
      return;
    }
    fetch(container.getAttribute("data-src"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        return render(container, data);
      })
      .catch(function (error) {
        if (window.console) {
          window.console.error("diagram:", error);
        }
        showMessage(container, failed);
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
