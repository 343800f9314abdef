// Leaderboard interactions, no dependencies: track/task tabs, view controls, sortable tables.
(function () {
  "use strict";

  var VIEW_KEYS = ["channel", "metric", "space"];

  function all(root, selector) {
    return Array.prototype.slice.call(root.querySelectorAll(selector));
  }

  // --- Tabs: one tab bar for the track, one for the task; a panel shows for the selected pair.
  function selectedTab(attribute) {
    var chosen = document.querySelector("[" + attribute + "][aria-selected='true']");
    return chosen ? chosen.getAttribute(attribute) : null;
  }

  function showTabs(track, task, updateHash) {
    all(document, "[data-tab-track]").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.getAttribute("data-tab-track") === track));
    });
    all(document, "[data-tab-task]").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.getAttribute("data-tab-task") === task));
    });
    all(document, "[data-panel-track]").forEach(function (panel) {
      panel.hidden = !(panel.getAttribute("data-panel-track") === track &&
                       panel.getAttribute("data-panel-task") === task);
    });
    if (updateHash && window.history && history.replaceState) {
      history.replaceState(null, "", "#" + encodeURIComponent(track) + "/" + encodeURIComponent(task));
    }
  }

  function tabsFromHash() {
    var parts = decodeURIComponent(location.hash.replace(/^#/, "")).split("/");
    var track = selectedTab("data-tab-track");
    var task = selectedTab("data-tab-task");
    all(document, "[data-tab-track]").forEach(function (tab) {
      if (tab.getAttribute("data-tab-track") === parts[0]) { track = parts[0]; }
    });
    all(document, "[data-tab-task]").forEach(function (tab) {
      if (tab.getAttribute("data-tab-task") === parts[1]) { task = parts[1]; }
    });
    return [track, task];
  }

  function initTabs() {
    if (!document.querySelector("[data-tab-track]")) { return; }
    all(document, "[data-tab-track]").forEach(function (tab) {
      tab.addEventListener("click", function () {
        showTabs(tab.getAttribute("data-tab-track"), selectedTab("data-tab-task"), true);
      });
    });
    all(document, "[data-tab-task]").forEach(function (tab) {
      tab.addEventListener("click", function () {
        showTabs(selectedTab("data-tab-track"), tab.getAttribute("data-tab-task"), true);
      });
    });
    var state = tabsFromHash();
    showTabs(state[0], state[1], false);
    window.addEventListener("hashchange", function () {
      var next = tabsFromHash();
      showTabs(next[0], next[1], false);
    });
  }

  // --- View controls: a board's data-channel/metric/space pick which of its views show.
  function refreshBoard(board) {
    all(board, "[data-view]").forEach(function (view) {
      view.hidden = !VIEW_KEYS.every(function (key) {
        var wanted = view.getAttribute("data-" + key);
        return wanted === null || wanted === board.getAttribute("data-" + key);
      });
    });
    all(board, "[data-set]").forEach(function (button) {
      var key = button.getAttribute("data-set");
      button.setAttribute("aria-pressed", String(button.getAttribute("data-value") === board.getAttribute("data-" + key)));
    });
  }

  function initBoards() {
    all(document, "[data-board]").forEach(function (board) {
      all(board, "[data-set]").forEach(function (button) {
        button.addEventListener("click", function () {
          board.setAttribute("data-" + button.getAttribute("data-set"), button.getAttribute("data-value"));
          refreshBoard(board);
        });
      });
      refreshBoard(board);
    });
  }

  // --- Sorting: click a heading; missing values always sort last; ties keep their order.
  function sortValue(cell, kind) {
    var raw = cell.getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    if (kind === "text") { return raw.toLowerCase(); }
    var number = parseFloat(raw);
    if (isNaN(number)) { return null; }
    return kind === "abs" ? Math.abs(number) : number;
  }

  function sortTable(table, heading) {
    var column = Array.prototype.indexOf.call(heading.parentNode.children, heading);
    var kind = heading.getAttribute("data-sort");
    var current = heading.getAttribute("aria-sort");
    var direction = current === "ascending" ? "descending"
      : current === "descending" ? "ascending"
      : (heading.getAttribute("data-sort-first") || "ascending");
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
      return { row: row, index: index, value: sortValue(row.cells[column], kind) };
    });
    rows.sort(function (a, b) {
      if (a.value === null || b.value === null) {
        return (a.value === null) - (b.value === null) || a.index - b.index;
      }
      if (a.value < b.value) { return -sign; }
      if (a.value > b.value) { return sign; }
      return a.index - b.index;
    });
    rows.forEach(function (item) { body.appendChild(item.row); });
    all(table, "th[data-sort]").forEach(function (th) { th.removeAttribute("aria-sort"); });
    heading.setAttribute("aria-sort", direction);
  }

  function initSorting() {
    all(document, "table[data-sortable]").forEach(function (table) {
      all(table, "th[data-sort]").forEach(function (heading) {
        heading.addEventListener("click", function () { sortTable(table, heading); });
      });
    });
  }

  initTabs();
  initBoards();
  initSorting();
})();
