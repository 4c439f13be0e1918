"""Benchmarks operators run against their own deployment (`citychain bench ...`).

Each prints one line ``bench <name>: <value> <unit> (ceiling <value> <unit>, ratio <r>)``
where the ceiling is measured on the same machine in the same run, so figures compare across
machines.
"""


def result_line(name: str, value: float, unit: str, ceiling: float, ceiling_unit: str) -> str:
    ratio = value / ceiling if ceiling else 0.0
    return (
        f"bench {name}: {value:,.0f} {unit} "
        f"(ceiling {ceiling:,.0f} {ceiling_unit}, ratio {ratio:.3f})"
    )
