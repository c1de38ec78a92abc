// Goal: draw a report page's charts in the browser, from the data embedded in the page, with uPlot.
// Method: plain ES2017 run as an inline script (the page is self-contained, so there is no bundler); the data
// is already aligned by the renderer, so this file only builds uPlot options, formats ticks and legend values
// (money from integers of minor units, like the rest of the report), and keeps the charts' width in step
// with the page. It exposes the uPlot instances as `window.payfleetCharts` for the browser test.
(function () {
  'use strict';
  var HEIGHT = 220;
  var payload = JSON.parse(document.getElementById('payfleet-data').textContent);
  var drawn = [];
  window.payfleetCharts = drawn;

  function group(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }
  function fmtCount(v) {
    var rounded = Math.round(v * 100) / 100;
    return (rounded < 0 ? '-' : '') + group(String(Math.abs(rounded)));
  }
  // Minor units to major units by integer quotient and remainder, never by float division.
  function fmtMinor(v) {
    var n = Math.round(v);
    var sign = n < 0 ? '-' : '';
    n = Math.abs(n);
    var major = Math.trunc(n / 100);
    var cents = n - major * 100;
    return sign + group(String(major)) + '.' + (cents < 10 ? '0' : '') + cents;
  }
  function fmtMs(v) {
    var a = Math.abs(v);
    if (a < 10000) return fmtCount(Math.round(v)) + ' ms';
    if (a < 120000) return Number((v / 1000).toPrecision(3)) + ' s';
    if (a < 7200000) return Number((v / 60000).toPrecision(3)) + ' min';
    return Number((v / 3600000).toPrecision(3)) + ' h';
  }
  var FORMAT = { count: fmtCount, ms: fmtMs, minor: fmtMinor };
  function fmtMinute(m) {
    return m < 120 || m % 60 !== 0 ? m + ' min' : m / 60 + ' h';
  }
  function zeroBased(u, min, max) {
    var lo = Math.min(0, min == null ? 0 : min);
    var hi = max == null || max <= lo ? lo + 1 : max;
    return uPlot.rangeNum(lo, hi, 0.1, true);
  }
  // Durations tick at steps a person counts in (1 s, 30 s, 1 min, 5 min…), not at 200,000 ms.
  var MS_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 144e5, 216e5, 432e5, 864e5];
  var INTEGER_STEPS = [];
  for (var p = 1; p <= 1e15; p *= 10) INTEGER_STEPS.push(p, 2 * p, 5 * p);
  function axis(scale, unit, side) {
    var f = FORMAT[unit];
    var a = {
      scale: scale,
      size: 72,
      values: function (u, ticks) { return ticks.map(function (t) { return t == null ? '' : f(t); }); },
    };
    // Counts and minor units are integers: no tick at 0.25 of an order or of a cent.
    a.incrs = unit === 'ms' ? MS_STEPS : INTEGER_STEPS;
    if (side === 1) { a.side = 1; a.grid = { show: false }; }
    return a;
  }
  function widthOf(el) {
    return Math.max(280, Math.floor(el.clientWidth));
  }

  function build(chart, el) {
    if (chart.empty) {
      var note = document.createElement('p');
      note.className = 'empty';
      note.textContent = 'No data recorded for this chart in this run.';
      el.appendChild(note);
      return;
    }
    var series = [{ label: 'minute', value: function (u, v) { return v == null ? '—' : fmtMinute(v); } }];
    var scales = { x: { time: false }, y: { range: zeroBased } };
    var axes = [{ values: function (u, ticks) { return ticks.map(fmtMinute); } }, axis('y', chart.left, 3)];
    if (chart.right) {
      scales.y2 = { range: zeroBased };
      axes.push(axis('y2', chart.right, 1));
    }
    chart.series.forEach(function (s) {
      var unit = s.side === 'right' ? chart.right : chart.left;
      var line = {
        label: s.label,
        stroke: s.color,
        width: 2,
        scale: s.side === 'right' ? 'y2' : 'y',
        spanGaps: false,
        value: function (u, v) { return v == null ? '—' : FORMAT[unit](v); },
      };
      if (s.dash) line.dash = [7, 5];
      series.push(line);
    });
    var data = [chart.x].concat(chart.series.map(function (s) { return s.values; }));
    var plot = new uPlot(
      { width: widthOf(el), height: HEIGHT, series: series, scales: scales, axes: axes, cursor: { sync: { key: 'payfleet' } } },
      data,
      el,
    );
    drawn.push({ id: chart.id, plot: plot, element: el });
  }

  payload.charts.forEach(function (chart) {
    var el = document.querySelector('figure.chart[data-chart="' + chart.id + '"] .plot');
    if (el) build(chart, el);
  });

  var pending = 0;
  window.addEventListener('resize', function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () {
      drawn.forEach(function (d) { d.plot.setSize({ width: widthOf(d.element), height: HEIGHT }); });
    });
  });
})();
