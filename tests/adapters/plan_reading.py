"""What a PostgreSQL plan reads: shared by the tests that hold the SQL adapters to their indexes."""

from __future__ import annotations


def index_names(plan: object) -> list[str]:
    """Every index a JSON plan reads, and ``seq:<table>`` for every sequential scan."""
    found: list[str] = []
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.append(plan["Index Name"])
        if plan.get("Node Type") in {"Seq Scan", "Parallel Seq Scan"}:
            found.append(f"seq:{plan['Relation Name']}")
        for value in plan.values():
            found += index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            found += index_names(value)
    return found
