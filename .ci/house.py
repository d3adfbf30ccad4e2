#!/usr/bin/env python3
"""The shape of the house, measured: the longest functions outside tests,
the import cycles between src/'s top-level modules, and how many engine
tests run with no store and no HTTP.

Run from the repository's top: `python3 .ci/house.py`. Figures for issue
notes; it asserts nothing, so CI does not run it.
"""
import os
import re
import sys

SRC = "src"
# A test that opens any of these touches a disk or a socket.
IO = re.compile(
    r"tempdir|Store::open|TcpListener|Mock|mock::|serve\(|reqwest|build_engine|Simulator|std::fs|tokio::fs"
)


def strip(text):
    """Blank out comments, string and char literals, keeping line breaks,
    so braces and `crate::` inside them do not count."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        if text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        m = re.match(r'b?r(#*)"', text[i:i + 40])
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + re.sub(r"[^\n]", " ", text[i:j])[2:])
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
            continue
        if c == "'":
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * m.end())
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def rust_files(root):
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith(".rs"):
                yield os.path.join(dirpath, name)


def split_tests(code):
    """The code before a file's `#[cfg(test)] mod tests`, and that module."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod \w+", code)
    return (code, "") if not m else (code[: m.start()], code[m.start():])


def functions(code):
    """(name, first line, lines) for every fn with a body."""
    for m in re.finditer(r"\bfn\s+(\w+)", code):
        i = m.end()
        depth = 0
        while i < len(code) and code[i] not in "{;":
            # A `;` inside `[u8; 4]` or a where-clause's generics is not the end.
            if code[i] in "([<":
                depth += 1
            elif code[i] in ")]>":
                depth -= 1
            i += 1
            if i < len(code) and code[i] == ";" and depth > 0:
                i += 1
        if i >= len(code) or code[i] == ";":
            continue
        start, depth = i, 0
        while i < len(code):
            if code[i] == "{":
                depth += 1
            elif code[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        first = code.count("\n", 0, m.start()) + 1
        yield m.group(1), first, code.count("\n", start, i) + 1


def module_of(path):
    rel = os.path.relpath(path, SRC)
    head = rel.split(os.sep)[0]
    return head[:-3] if head.endswith(".rs") else head


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    fns, edges, why = [], {}, {}
    engine_tests = {"no I/O": 0, "I/O": 0}
    for path in rust_files(SRC):
        code = strip(open(path, encoding="utf-8").read())
        # A module of its own declared `#[cfg(test)] mod tests;` is all test.
        if os.path.basename(path) == "tests.rs":
            body, tests = "", code
        else:
            body, tests = split_tests(code)
        for name, line, length in functions(body):
            fns.append((length, f"{path}:{line}", name))
        me = module_of(path)
        for m in re.finditer(r"\bcrate::(\w+)", body):
            other = m.group(1)
            known = os.path.exists(os.path.join(SRC, other)) or os.path.exists(
                os.path.join(SRC, other + ".rs")
            )
            if other != me and known:
                edges.setdefault(me, set()).add(other)
                why.setdefault((me, other), path)
        if path.startswith(os.path.join(SRC, "engine")) and tests:
            for t in re.split(r"#\[(?:tokio::)?test[^\]]*\]", tests)[1:]:
                engine_tests["I/O" if IO.search(t) else "no I/O"] += 1
    fns.sort(reverse=True)
    print("longest functions (lines, outside test modules):")
    for length, where, name in fns[: int(sys.argv[1]) if len(sys.argv) > 1 else 10]:
        print(f"  {length:4}  {name}  {where}")
    print("import cycles between src/ top-level modules:")
    found = cycles(edges)
    for comp in found:
        pairs = [
            f"{a} -> {b} ({why[(a, b)]})"
            for a in comp
            for b in comp
            if (a, b) in why
        ]
        print(f"  {{{', '.join(comp)}}}: " + "; ".join(pairs))
    if not found:
        print("  none")
    print(
        f"engine unit tests: {engine_tests['no I/O']} without I/O, {engine_tests['I/O']} with"
    )


main()
