"""Find SQL that is not a constant: the check behind "SQL arrives only as parameters".

Every query the C code sends goes through libpq's PQ*exec*/PQsend* calls,
lib/db's db_query() and db_read() or gcalctl's sql_exec(), or a function that passes its
own `const char *sql` parameter on to one of them. The SQL argument of
every such call must be a string literal, a `static const char x[]` made
only of string literals, a choice (?:) between those, or the enclosing
function's own `sql` parameter (whose callers are checked the same way).
Values then can only travel as parameters: nothing builds SQL text at run
time.
"""

import os
import re

LIBPQ = {"PQexec": 1, "PQexecParams": 1, "PQsendQuery": 1, "PQsendQueryParams": 1, "PQprepare": 2,
         "PQsendPrepare": 2}
STRING = r'"(?:[^"\\]|\\.)*"'


def strip_comments(src):
    """src with comments blanked out (newlines kept, so line numbers hold) and string literals intact."""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src[i] in "\"'":
            j = i + 1
            while j < n and src[j] != src[i]:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        else:
            out.append(src[i])
            i += 1
    return "".join(out)


def call_args(s, open_paren):
    """The arguments of the call whose '(' is at open_paren, as stripped strings."""
    depth, i, args, cur = 0, open_paren, [], open_paren + 1
    while i < len(s):
        c = s[i]
        if c in "\"'":
            j = i + 1
            while s[j] != c:
                j += 2 if s[j] == "\\" else 1
            i = j
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(s[cur:i].strip())
                return args
        elif c == "," and depth == 1:
            args.append(s[cur:i].strip())
            cur = i + 1
        i += 1
    return args


def literal_macros(s):
    """Macros of the file that expand to constants: numbers, string literals, their own (stringified)
    parameters and other such macros."""
    out = set()
    s = s.replace("\\\n", " ")  # continued lines
    defs = re.findall(r"^#define\s+([A-Z_][A-Z0-9_]*)(\([^)]*\))?\s+(.*)$", s, re.M)
    for _ in range(3):  # macros made of macros
        for name, params, body in defs:
            names = set(re.findall(r"\w+", params or ""))
            rest = re.sub(STRING, " ", body)
            constant = re.search(STRING, body) or re.fullmatch(r"\s*(?:\d+|#\s*\w+)\s*", body)
            if constant and all(w in names or w in out for w in re.findall(r"[A-Za-z_]\w*", rest)):
                out.add(name)
    return out


def only_literals(text, macros):
    """Is text (an initializer) made only of string literals and literal macros (with literal arguments)?"""
    rest = re.sub(STRING, " ", text)
    return all(w in macros or w.isdigit() for w in re.findall(r"\w+", rest)) and not re.search(r"[+\-*/%&|^]", rest)


def constants(s, headers=""):
    """Names of `static const char name[]` arrays and members of `static const struct` tables made only of literals
    (and of literal macros, the project's headers' included)."""
    macros = literal_macros(headers + "\n" + s)
    out = set()
    for m in re.finditer(r"static\s+const\s+char\s+(\w+)\s*\[\s*\]\s*=([^;]*);", s):
        if only_literals(m.group(2), macros):
            out.add(m.group(1))
    for m in re.finditer(r"static\s+const\s+struct\s+\w+\s+\w+\s*\[\s*\]\s*=\s*\{(.*?)\n\};", s, re.S):
        if only_literals(re.sub(r"[{},]", " ", m.group(1)), macros):
            out.add("table member")
    return out


def enclosing_sql_param(s, pos):
    """True when the function around pos has a `const char *sql` parameter."""
    head = s.rfind("\n{", 0, pos)
    sig = s[s.rfind("\n", 0, max(head - 1, 0)) - 300 if head > 300 else 0:head]
    return re.search(r"const\s+char\s*\*\s*sql\s*[,)]", sig) is not None


def wrappers(sources):
    """Functions with a `const char *sql` parameter: name -> its index."""
    out = {}
    for s in sources.values():
        for m in re.finditer(r"^[a-zA-Z_][\w \*]*?\b(\w+)\(([^;{]*?)\)\s*\n\{", s, re.M):
            params = [p.strip() for p in m.group(2).split(",")]
            for i, p in enumerate(params):
                if re.fullmatch(r"const\s+char\s*\*\s*sql", p):
                    out[m.group(1)] = i
    return out


def safe(arg, consts, s, pos):
    arg = arg.strip()
    while arg.startswith("(") and arg.endswith(")"):
        arg = arg[1:-1].strip()
    if re.fullmatch(r"(?:\s*" + STRING + r")+", arg):
        return True
    if arg in consts:
        return True
    if re.fullmatch(r"\w+->\w*sql", arg) and "table member" in consts:
        return True
    if arg == "sql" and enclosing_sql_param(s, pos):
        return True
    m = re.fullmatch(r"([^?]+)\?(.+):(.+)", arg, re.S)
    return m is not None and safe(m.group(2), consts, s, pos) and safe(m.group(3), consts, s, pos)


def scan(root, dirs=("lib", "services", "tests/google-standin")):
    """Every query call whose SQL is not constant, as 'file:line: call(...)'."""
    sources, headers = {}, []
    for d in dirs:
        for base, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith((".c", ".h")):
                    with open(os.path.join(base, f)) as fh:
                        text = strip_comments(fh.read())
                    if f.endswith(".c"):
                        sources[os.path.relpath(os.path.join(base, f), root)] = text
                    else:
                        headers.append(text)
    headers = "\n".join(headers)
    funcs = dict(LIBPQ, db_query=1, db_read=1, sql_exec=2)
    # lib/db's queue (db.c, with its statement cache dbstmt.c and read batches dbbatch.c) hands on the text
    # db_query() or db_read() was given; every call of those is checked instead.
    exempt = {(f"lib/{f}", "q->sql") for f in ("db.c", "dbstmt.c", "dbbatch.c")}
    funcs.update(wrappers(sources))
    problems, calls = [], 0
    for path, s in sorted(sources.items()):
        consts = constants(s, headers)
        for name, index in funcs.items():
            for m in re.finditer(r"\b" + name + r"\s*\(", s):
                before = s[:m.start()].rstrip()
                if re.search(r"(?:^|[\s\*])(?:void|int|char|PGresult\s*\*|bool|long)\s*\*?\s*$", before) \
                        and s[m.end():].find("{") < s[m.end():].find(";"):
                    continue  # the definition itself
                args = call_args(s, m.end() - 1)
                if index >= len(args):
                    continue  # a declaration or a mention, not a call
                calls += 1
                if (path, args[index]) not in exempt and not safe(args[index], consts, s, m.start()):
                    line = s.count("\n", 0, m.start()) + 1
                    problems.append(f"{path}:{line}: {name}(... {args[index][:60]} ...)")
    return problems, calls
