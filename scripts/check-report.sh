#!/usr/bin/env bash
# Renders a report.html the way a person sees it, in headless Chromium (Debian's `chromium`),
# writes a full-page screenshot and checks the page:
#   - it loads without console errors, page errors or failed resource loads;
#   - it fetches nothing (report.html must be self-contained: no network, no files beside it);
#   - every figure (<figure class="plot">) shows: an inline SVG laid out at a readable size,
#     with text in it (title, axes, legend).
#
# usage: scripts/check-report.sh REPORT.html SCREENSHOT.png
# Exit status: 0 checked and fine, 1 a check failed (the reasons are printed), 2 usage,
# 3 no Chromium found (set CHROMIUM to its path if it has another name).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 REPORT.html SCREENSHOT.png" >&2
    exit 2
fi
report=$(realpath "$1")
shot=$(realpath -m "$2")
[ -f "$report" ] || { echo "$report: no such file$([ -d "$report" ] && echo " (a folder: give its report.html)")" >&2; exit 2; }
# (a folder as SCREENSHOT: chromium wrote nothing and the check said it had; a missing folder)
[ -d "$shot" ] && { echo "$shot is a folder: give the screenshot's file name (e.g. $shot/report.png)" >&2; exit 2; }
[ -d "$(dirname "$shot")" ] || { echo "$(dirname "$shot"): no such folder for the screenshot" >&2; exit 2; }

chromium="${CHROMIUM:-}"
if [ -z "$chromium" ]; then
    for c in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$c" >/dev/null 2>&1; then chromium=$(command -v "$c"); break; fi
    done
fi
if [ -z "$chromium" ] || ! [ -x "$chromium" ]; then
    echo "no Chromium found (apt-get install chromium, or set CHROMIUM)" >&2
    exit 3
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A private profile and no first-run work: nothing of the user's browser is touched.
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --no-default-browser-check
       --user-data-dir="$work/profile" --disable-extensions --disable-background-networking
       --disable-component-update --disable-sync --force-device-scale-factor=1)

# 1. The checks run inside the page: a copy of it with a probe script first in <head>, so it
#    sees every console message and error from the start. The copy lives in a temporary
#    folder, so a relative reference to a file beside the report (plots/x.png) fails to load
#    and is reported instead of passing by accident.
probe='<script>
(function () {
  var problems = [];
  ["error", "warn"].forEach(function (k) {
    var orig = console[k];
    console[k] = function () { problems.push("console." + k + ": " + Array.prototype.join.call(arguments, " ")); orig.apply(console, arguments); };
  });
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) problems.push("failed to load " + (t.src || t.href));
    else problems.push("page error: " + (e.message || e));
  }, true);
  window.addEventListener("unhandledrejection", function (e) { problems.push("unhandled rejection: " + e.reason); });
  window.addEventListener("load", function () {
    var figures = Array.prototype.map.call(document.querySelectorAll("figure.plot"), function (f) {
      var svg = f.querySelector("svg"), r = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
      return { id: f.id, width: Math.round(r.width), height: Math.round(r.height),
               texts: svg ? svg.querySelectorAll("text").length : 0 };
    });
    var out = { problems: problems, figures: figures,
                resources: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
                height: document.documentElement.scrollHeight, title: document.title };
    var pre = document.createElement("pre");
    pre.id = "ijepa-report-check";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
</script>'
python3 - "$report" "$work/probe.html" "$probe" <<'EOF'
import sys
src, dst, probe = sys.argv[1], sys.argv[2], sys.argv[3]
html = open(src, encoding="utf-8").read()
i = html.find("<head>")
if i < 0:
    sys.exit(f"{src}: no <head>")
open(dst, "w", encoding="utf-8").write(html[: i + 6] + probe + html[i + 6 :])
EOF
timeout 120 "$chromium" "${flags[@]}" --virtual-time-budget=10000 --window-size=1280,900 \
    --dump-dom "file://$work/probe.html" >"$work/dom.html" 2>"$work/dump.log" || {
    echo "chromium failed to load the page; its log:" >&2
    tail -20 "$work/dump.log" >&2
    exit 1
}

# 2. The verdict, and the page height for the screenshot.
# (grep finds nothing in a report without figures: not a failure under pipefail)
expected=$({ grep -o '<figure [^>]*class="plot"' "$report" || true; } | wc -l)
height=$(python3 - "$work/dom.html" "$expected" <<'EOF'
import html, json, re, sys
dom, expected = open(sys.argv[1], encoding="utf-8").read(), int(sys.argv[2])
m = re.search(r'<pre id="ijepa-report-check">(.*?)</pre>', dom, re.S)
if not m:
    sys.exit("the page never finished loading (no check result in its DOM)")
r = json.loads(html.unescape(m.group(1)))
bad = list(r["problems"])
bad += [f"fetched {u} (the report must be self-contained)" for u in r["resources"]]
if len(r["figures"]) != expected:
    bad.append(f"{len(r['figures'])} figures laid out, the HTML has {expected}")
for f in r["figures"]:
    if f["width"] < 300 or f["height"] < 200:
        bad.append(f"figure {f['id']} is {f['width']}x{f['height']} px on the page")
    if f["texts"] < 5:
        bad.append(f"figure {f['id']} has {f['texts']} text elements (title, axes, ticks, legend expected)")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
print(max(600, min(int(r["height"]), 30000)))
print(f"page loads cleanly: {len(r['figures'])} figures shown, no console errors, nothing fetched", file=sys.stderr)
EOF
) || exit 1

# 3. The screenshot of the unmodified report, full page.
timeout 120 "$chromium" "${flags[@]}" --virtual-time-budget=5000 --window-size=1400,"$height" \
    --screenshot="$shot" "file://$report" >"$work/shot.log" 2>&1 || {
    echo "chromium failed to take the screenshot; its log:" >&2
    tail -20 "$work/shot.log" >&2
    exit 1
}
[ -f "$shot" ] && [ -s "$shot" ] || { echo "no screenshot written" >&2; exit 1; }
echo "screenshot: $shot (1400x$height)" >&2
