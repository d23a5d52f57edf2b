/* The job dashboard's only script (no inline scripts: the pages' CSP forbids them).
 *
 * Every page: confirmation of destructive forms (`data-confirm`) and the "all on this
 * page" box of the dead letters. The overview: draws its two charts with the vendored
 * uPlot from the JSON data block, then every few seconds fetches
 * /dashboard/api/overview (same origin, session cookie) and redraws charts, counters
 * and the health list in place — no page reload.
 */
"use strict";
(function () {
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      document.querySelectorAll('input[name="message_id"][form="bulk"]').forEach(function (box) {
        box.checked = selectAll.checked;
      });
    });
  }

  var source = document.getElementById("overview-data");
  if (!source || typeof window.uPlot === "undefined") return;
  var uPlot = window.uPlot;
  var data = JSON.parse(source.textContent);
  var refreshSeconds = Number(source.getAttribute("data-refresh-seconds")) || 5;

  var JOB_SERIES = [
    ["ok", "processed", "#2e7d32"],
    ["failed", "failed attempts", "#c62828"],
    ["dead", "dead-lettered", "#6a1b9a"]
  ];
  var SOURCE_COLORS = {
    slack: "#611f69", github: "#24292f", pagerduty: "#06ac38",
    incidentio: "#f25533", coralogix: "#1f6feb", generic: "#b45309", slack_interactions: "#e01e5a"
  };
  var sources = Object.keys(data.events_per_minute);
  var charts = [];

  function sum(values) { return values.reduce(function (a, b) { return a + b; }, 0); }

  function hhmm(seconds) { return new Date(seconds * 1000).toISOString().slice(11, 16); }

  function makeChart(element, series, rows) {
    var options = {
      width: Math.max(240, element.clientWidth),
      height: 200,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      axes: [
        { values: function (u, splits) { return splits.map(hhmm); } },
        { size: 44 }
      ],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      series: [{ label: "UTC" }].concat(series.map(function (s) {
        return { label: s[0], stroke: s[1], width: 2, points: { show: false } };
      }))
    };
    var chart = new uPlot(options, rows, element);
    charts.push({ chart: chart, element: element });
    return chart;
  }

  function jobRows(d) {
    return [d.minutes].concat(JOB_SERIES.map(function (s) { return d.jobs[s[0]]; }));
  }

  function eventRows(d) {
    return [d.minutes].concat(sources.map(function (s) { return d.events_per_minute[s]; }));
  }

  var jobsElement = document.getElementById("chart-jobs");
  var jobsChart = jobsElement && data.jobs
    ? makeChart(jobsElement, JOB_SERIES.map(function (s) { return [s[1], s[2]]; }), jobRows(data))
    : null;
  var eventsElement = document.getElementById("chart-events");
  var eventsChart = eventsElement
    ? makeChart(eventsElement, sources.map(function (s) { return [s, SOURCE_COLORS[s] || "#607d8b"]; }), eventRows(data))
    : null;

  /* The values the page shows under data-k="…" keys, from one overview. */
  function cells(d) {
    var c = { workers: d.workers_alive };
    (d.queues || []).forEach(function (q) {
      ["ready", "delayed", "in_progress", "dead"].forEach(function (f) { c["queue." + q.name + "." + f] = q[f]; });
    });
    if (d.jobs) JOB_SERIES.forEach(function (s) { c["jobs." + s[0] + ".total"] = sum(d.jobs[s[0]]); });
    Object.keys(d.events_by_status).forEach(function (source) {
      var total = 0;
      Object.keys(d.events_by_status[source]).forEach(function (status) {
        var n = d.events_by_status[source][status];
        c["events." + source + "." + status] = n;
        total += n;
      });
      c["events." + source + ".total"] = total;
    });
    [["provisioning", d.provisioning_runs], ["agent", d.agent_runs]].forEach(function (kind) {
      Object.keys(kind[1]).forEach(function (status) { c["runs." + kind[0] + "." + status] = kind[1][status]; });
    });
    Object.keys(d.schedules).forEach(function (status) { c["schedules." + status] = d.schedules[status]; });
    return c;
  }

  function apply(d) {
    var c = cells(d);
    document.querySelectorAll("[data-k]").forEach(function (element) {
      var value = c[element.getAttribute("data-k")];
      if (value === undefined || value === null) return;
      element.textContent = String(value);
      if (element.hasAttribute("data-bad-if-positive")) element.classList.toggle("bad", value > 0);
      if (element.hasAttribute("data-bad-if-zero")) element.classList.toggle("bad", value === 0);
    });
    var health = document.getElementById("health");
    var list = document.getElementById("problems");
    list.replaceChildren.apply(list, d.problems.map(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    health.className = "health " + (d.problems.length ? "bad" : "good");
    document.getElementById("health-title").textContent = d.problems.length ? "Needs attention" : "All clear";
    document.getElementById("generated-at").textContent = d.generated_at.replace("T", " ").slice(0, 19);
    if (jobsChart && d.jobs) jobsChart.setData(jobRows(d));
    if (eventsChart) eventsChart.setData(eventRows(d));
  }

  var state = document.getElementById("refresh-state");
  function refresh() {
    fetch("/dashboard/api/overview", {
      credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" }
    }).then(function (response) {
      if (response.status === 401) {
        window.location.assign("/dashboard/login?next=%2Fdashboard&notice=expired");
        throw new Error("signed out");
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (d) {
      apply(d);
      state.textContent = "";
    }).catch(function (error) {
      state.textContent = "· refresh failed (" + error.message + "), retrying";
    });
  }
  window.setInterval(refresh, refreshSeconds * 1000);

  var resizing = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      charts.forEach(function (c) {
        c.chart.setSize({ width: Math.max(240, c.element.clientWidth), height: 200 });
      });
    }, 150);
  });
})();
