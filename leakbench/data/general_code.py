"""Held-out general code for the retain set: ordinary functions with no personal data at all."""

GENERAL_CODE: tuple[tuple[str, str, str], ...] = (
    (
        "general_binary_search",
        "python",
        '''def binary_search(items, target):
    """Return the index of target in the sorted list items, or -1."""
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
''',
    ),
    (
        "general_word_count",
        "python",
        '''from collections import Counter


def word_count(text):
    """Count how often each lower-cased word occurs in text."""
    words = [w.strip(".,;:!?").lower() for w in text.split()]
    return Counter(w for w in words if w)
''',
    ),
    (
        "general_lru_cache",
        "python",
        """from collections import OrderedDict


class LRUCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.data = OrderedDict()

    def get(self, key, default=None):
        if key not in self.data:
            return default
        self.data.move_to_end(key)
        return self.data[key]

    def put(self, key, value):
        self.data[key] = value
        self.data.move_to_end(key)
        if len(self.data) > self.capacity:
            self.data.popitem(last=False)
""",
    ),
    (
        "general_flatten",
        "python",
        '''def flatten(nested):
    """Yield the leaves of an arbitrarily nested list."""
    for item in nested:
        if isinstance(item, list):
            yield from flatten(item)
        else:
            yield item
''',
    ),
    (
        "general_retry",
        "python",
        '''import time


def retry(fn, attempts=3, delay=0.5):
    """Call fn until it succeeds, sleeping a little longer after each failure."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(delay * (2 ** attempt))
''',
    ),
    (
        "general_debounce",
        "javascript",
        """export function debounce(fn, wait = 100) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
""",
    ),
    (
        "general_chunk",
        "typescript",
        """export function chunk<T>(items: T[], size: number): T[][] {
  if (size <= 0) throw new Error("size must be positive");
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(items.slice(i, i + size));
  }
  return out;
}
""",
    ),
    (
        "general_fibonacci",
        "java",
        """public final class Fibonacci {
    private Fibonacci() {}

    public static long nth(int n) {
        long a = 0, b = 1;
        for (int i = 0; i < n; i++) {
            long next = a + b;
            a = b;
            b = next;
        }
        return a;
    }
}
""",
    ),
    (
        "general_reverse",
        "go",
        """package strutil

// Reverse returns s with its runes in reverse order.
func Reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
""",
    ),
    (
        "general_report_query",
        "sql",
        """-- Monthly order totals per region.
SELECT region,
       date_trunc('month', created_at) AS month,
       count(*) AS orders,
       sum(total) AS revenue
FROM orders
GROUP BY region, month
ORDER BY month, region;
""",
    ),
    (
        "general_backup_script",
        "shell",
        """#!/usr/bin/env bash
# Keep the seven newest archives in the backup folder.
set -euo pipefail
dir="${1:-/var/backups}"
ls -1t "$dir"/*.tar.gz 2>/dev/null | tail -n +8 | xargs -r rm --
""",
    ),
    (
        "general_ci_lint",
        "yaml",
        """name: lint
on: [push, pull_request]
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install ruff && ruff check .
""",
    ),
)
