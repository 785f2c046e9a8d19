"""Summarize `mutmut results --all true` (on stdin) for scripts/mutate: counts per module and every surviving mutant.

Mutants listed in scripts/mutate-equivalent.txt (`name  reason`, one a line) make no observable difference (or sit
on a line no test can reach) and are counted as equivalent. Exits 1 when a mutant survived that is not listed there, or when a mutant had no test.
Usage: mutation_summary.py GROUP GLOB... (only mutants whose names match a glob count).
"""
from __future__ import annotations

import fnmatch
import sys
from collections import Counter, defaultdict
from pathlib import Path

EQUIVALENT = Path(__file__).with_name('mutate-equivalent.txt')


def main(group: str, globs: list[str]) -> int:
    equivalent = {line.split()[0] for line in EQUIVALENT.read_text().splitlines()
                  if line.strip() and not line.startswith('#')}
    counts: dict[str, Counter] = defaultdict(Counter)
    bad: list[str] = []
    for line in sys.stdin:
        name, _, status = line.strip().rpartition(': ')
        if not name or not any(fnmatch.fnmatchcase(name, glob) for glob in globs):
            continue
        module = name.split('.x')[0]
        if status in {'survived', 'no tests'} and name in equivalent:
            status = 'equivalent'
        counts[module][status] += 1
        if status not in {'killed', 'equivalent'}:
            bad.append(f'  {status}: {name}')
    print(f'{group}:')
    for module, by_status in sorted(counts.items()):
        rest = ', '.join(f'{n} {s}' for s, n in sorted(by_status.items())
                         if s not in {'killed', 'survived', 'equivalent'})
        print(f'  {module}: {sum(by_status.values())} mutants, {by_status["killed"]} killed, '
              f'{by_status["survived"]} survived, {by_status["equivalent"]} equivalent' + (f', {rest}' if rest else ''))
    print('\n'.join(bad) if bad else '  no surviving mutant')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2:]))
