"""Graph stage: environment inheritance, promotion order and release needs, with networkx.

Release ``needs`` form a DAG; the plan runs it in waves (topological generations, sorted by
name inside a wave so output is stable).

networkx is imported where it is used, not with this module: importing it costs about a tenth
of a second, and every command loads this module. What every compile needs — is the needs graph
acyclic, and its waves — is a short walk done here without it (:func:`_generations`); networkx
names the cycles when there are some, and serves ``meshc graph`` and the promotion order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..core.diagnostics import Diagnostics
from .model import Project, Release

if TYPE_CHECKING:
    import networkx as nx


def needs_graph(releases: Iterable[Release]) -> nx.DiGraph:
    """Edges point from a needed release to the release that needs it."""
    import networkx as nx

    graph = nx.DiGraph()
    releases = list(releases)
    for release in releases:
        graph.add_node(release.name)
    graph.add_edges_from(_need_edges(releases))
    return graph


def _need_edges(releases: list[Release]) -> list[tuple[str, str]]:
    """(needed, needer) for every need among ``releases``."""
    names = {r.name for r in releases}
    return [(need.name, release.name) for release in releases for need in release.needs
            if need.name in names]


def _generations(releases: list[Release]) -> list[list[str]] | None:
    """The needs graph's topological generations (as ``nx.topological_generations``, unsorted),
    or None when the needs have a cycle."""
    waiting = {r.name: 0 for r in releases}  # needs not yet placed in a wave
    needers: dict[str, list[str]] = {name: [] for name in waiting}
    for needed, needer in set(_need_edges(releases)):  # a need listed twice is one edge
        waiting[needer] += 1
        needers[needed].append(needer)
    wave = [name for name, count in waiting.items() if count == 0]
    result = []
    while wave:
        result.append(wave)
        following = []
        for name in wave:
            for needer in needers[name]:
                waiting[needer] -= 1
                if waiting[needer] == 0:
                    following.append(needer)
        wave = following
    return result if sum(map(len, result)) == len(waiting) else None


def check_needs(project: Project, diags: Diagnostics) -> None:
    """Report every cycle among release needs (each once), pointing at a ``needs`` entry."""
    if _generations(list(project.releases)) is not None:
        return  # no cycle
    import networkx as nx

    graph = needs_graph(project.releases)
    by_name = {r.name: r for r in project.releases}
    # an edge a -> b means "b needs a"; reversed, a cycle reads in "needs" order
    for cycle in sorted(_canonical(list(reversed(c))) for c in nx.simple_cycles(graph)):
        path = " -> ".join([*cycle, cycle[0]])
        edges = []  # every `needs` entry of the cycle, in file order
        for i, needer in enumerate(cycle):
            needed = cycle[(i + 1) % len(cycle)]
            need = next(n for n in by_name[needer].needs if n.name == needed)
            edges.append((need.span.file, need.span.line, need.span.col, needer, need))
        edges.sort(key=lambda edge: edge[:3])
        # the entry written last closes the cycle as one reads the file (most often, the one
        # just added); the others are shown with it
        *others, (_, _, _, needer, last) = edges
        diags.error(f"releases need each other in a cycle: {path}", last.span,
                    help=f"a release can only need releases that do not need it back: drop "
                         f"'{last.name}' from the needs of '{needer}', or another edge",
                    related=tuple((f"'{who}' needs '{need.name}' here", need.span)
                                  for _, _, _, who, need in others))


def _canonical(cycle: list[str]) -> list[str]:
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


def waves(releases: Iterable[Release]) -> tuple[tuple[str, ...], ...]:
    """The releases' needs graph in topological generations, each sorted by name. Raises
    ValueError if the needs have a cycle (:func:`check_needs` reports them first)."""
    generations = _generations(list(releases))
    if generations is None:
        raise ValueError("release needs have a cycle")
    return tuple(tuple(sorted(gen)) for gen in generations)


def inheritance_graph(project: Project) -> nx.DiGraph:
    import networkx as nx

    graph = nx.DiGraph()
    for env in project.environments:
        graph.add_node(env.name)
        if len(env.chain) > 1:
            graph.add_edge(env.chain[-2], env.name)
    return graph


def promotion_graph(project: Project) -> nx.DiGraph:
    import networkx as nx

    graph = nx.DiGraph()
    for env in project.deployable:
        graph.add_node(env.name)
        if env.promotes_from:
            graph.add_edge(env.promotes_from, env.name)
    # a source deployed in regions (production of production-dr) is a node of its own, in its
    # place in the order
    sources = [n for n in graph if project.environment(n) not in project.deployable]
    while sources:
        env = project.environment(sources.pop())
        if env is not None and env.promotes_from and not graph.has_edge(env.promotes_from,
                                                                          env.name):
            graph.add_edge(env.promotes_from, env.name)
            sources.append(env.promotes_from)
    return graph


def promotion_order(project: Project) -> tuple[str, ...]:
    """Deployable environments in promotion order (sources before targets; ties by name, an
    environment's regions right after it)."""
    import networkx as nx

    return tuple(nx.lexicographical_topological_sort(promotion_graph(project),
                                                     key=lambda name: name.replace("/", "\0")))


# --- presentation (meshc graph) -------------------------------------------------------------

def format_graph(project: Project, enabled: set[str] | None,
                 env: str | None, fmt: str) -> str:
    """Releases and needs (of ``env``, or all), and without ``env`` also environments."""
    releases = [r for r in project.releases if enabled is None or r.name in enabled]
    graph = needs_graph(releases)
    generations = waves(releases)
    if fmt == "json":
        return _graph_json(project, graph, generations, env)
    if fmt == "dot":
        return _graph_dot(project, graph, env)
    if fmt == "mermaid":
        return _graph_mermaid(project, graph, env)
    return _graph_text(project, graph, generations, env)


def _graph_text(project: Project, graph: nx.DiGraph, generations: tuple[tuple[str, ...], ...],
                env: str | None) -> str:
    lines = [f"releases{f' in {env}' if env else ''} ({graph.number_of_nodes()}), in waves:"]
    for index, wave in enumerate(generations):
        lines.append(f"  wave {index}")
        for name in wave:
            needs = sorted(graph.predecessors(name))
            lines.append(f"    {name}" + (f"  <- needs {', '.join(needs)}" if needs else ""))
    if env is None:
        lines.append("")
        lines.append("environments (inheritance):")
        lines.extend(_tree_lines(inheritance_graph(project), project))
        lines.append("")
        lines.append("promotion order:")
        lines.extend(f"  {chain}" for chain in _promotion_chain(project))
    return "\n".join(lines) + "\n"


def _tree_lines(graph: nx.DiGraph, project: Project) -> list[str]:
    lines: list[str] = []

    def walk(name: str, depth: int) -> None:
        env = project.environment(name)
        tags = []
        if env is not None and env.abstract:
            tags.append("abstract")
        if env is not None and env.protected:
            tags.append("protected")
        if env is not None and env.aliases:
            tags.append("aliases: " + ", ".join(env.aliases))
        lines.append("  " + "  " * depth + name + (f"  ({'; '.join(tags)})" if tags else ""))
        for child in sorted(graph.successors(name)):
            walk(child, depth + 1)

    for root in sorted(n for n in graph.nodes if graph.in_degree(n) == 0):
        walk(root, 0)
    return lines


def _promotion_chain(project: Project) -> list[str]:
    """Each promotion chain as ``a -> b -> c``; environments outside any chain last."""
    graph = promotion_graph(project)
    chains = []
    for root in sorted(n for n in graph.nodes if graph.in_degree(n) == 0 and graph.out_degree(n)):
        chains.append(" -> ".join(_chain_text(graph, root)))
    alone = sorted(n for n in graph.nodes if graph.degree(n) == 0)
    if alone:
        chains.append("not promoted: " + ", ".join(alone))
    return chains


def _chain_text(graph: nx.DiGraph, name: str) -> list[str]:
    targets = sorted(graph.successors(name))
    if not targets:
        return [name]
    if len(targets) == 1:
        return [name, *_chain_text(graph, targets[0])]
    branches = ", ".join(" -> ".join(_chain_text(graph, t)) for t in targets)
    return [f"{name} -> {{{branches}}}"]


def _graph_json(project: Project, graph: nx.DiGraph, generations: tuple[tuple[str, ...], ...],
                env: str | None) -> str:
    data: dict[str, object] = {
        "apiVersion": "meshc/v1", "kind": "Graph", "environment": env,
        "releases": [{"name": n, "needs": sorted(graph.predecessors(n)), "wave": i}
                     for i, wave in enumerate(generations) for n in wave],
    }
    if env is None:
        data["environments"] = [
            {"name": e.name, "inherits": e.group or (e.chain[-2] if len(e.chain) > 1 else None),
             "abstract": e.abstract, "protected": e.protected, "aliases": list(e.aliases),
             "promotesFrom": e.promotes_from}
            for e in sorted(project.environments, key=lambda e: e.name)]
        data["promotionOrder"] = list(promotion_order(project))
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def _graph_dot(project: Project, graph: nx.DiGraph, env: str | None) -> str:
    lines = ["digraph meshc {", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f'  "{n}";' for n in sorted(graph.nodes)]
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(graph.edges)]
    if env is None:
        lines.append("  subgraph cluster_environments {")
        lines.append('    label="environments"; node [shape=ellipse];')
        for a, b in sorted(inheritance_graph(project).edges):
            lines.append(f'    "env:{a}" -> "env:{b}" [label="inherits"];')
        for a, b in sorted(promotion_graph(project).edges):
            lines.append(f'    "env:{a}" -> "env:{b}" [style=dashed, label="promotes"];')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graph_mermaid(project: Project, graph: nx.DiGraph, env: str | None) -> str:
    ids = {n: "r_" + n.replace("-", "_") for n in graph.nodes}
    lines = ["flowchart LR"]
    lines += [f"  {ids[n]}[{n}]" for n in sorted(graph.nodes)]
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in sorted(graph.edges)]
    if env is None:
        def eid(name: str) -> str:
            return "e_" + name.replace("-", "_")
        lines.append("  subgraph environments")
        for e in sorted(project.environments, key=lambda e: e.name):
            lines.append(f"    {eid(e.name)}([{e.name}])")
        for a, b in sorted(inheritance_graph(project).edges):
            lines.append(f"    {eid(a)} -->|inherits| {eid(b)}")
        for a, b in sorted(promotion_graph(project).edges):
            lines.append(f"    {eid(a)} -.->|promotes| {eid(b)}")
        lines.append("  end")
    return "\n".join(lines) + "\n"
