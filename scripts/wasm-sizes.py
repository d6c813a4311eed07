#!/usr/bin/env python3
"""What the client WASM is made of: code bytes per crate and the biggest functions.

Reads a .wasm that still has its `name` section — cargo's own output, before wasm-bindgen and
wasm-opt, e.g. after
    cargo build -p frontend --features hydrate --target wasm32-unknown-unknown --profile wasm-release
run
    python3 scripts/wasm-sizes.py target/wasm32-unknown-unknown/wasm-release/frontend.wasm \
        [--crates N] [--functions N] [--match PATTERN,...]
The sizes are before wasm-opt, so they show shares, not the shipped bytes.
"""
import argparse
import collections
import re
import shutil
import subprocess


def leb128(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def skip_import(body, j):
    """Skip one import entry; returns (is_function, next index)."""
    for _ in range(2):  # module and field names
        length, j = leb128(body, j)
        j += length
    kind = body[j]
    j += 1
    if kind == 0:  # function: type index
        _, j = leb128(body, j)
    elif kind == 1:  # table: element type, limits
        j += 1
        flags = body[j]
        j += 1
        _, j = leb128(body, j)
        if flags & 1:
            _, j = leb128(body, j)
    elif kind == 2:  # memory: limits
        flags = body[j]
        j += 1
        _, j = leb128(body, j)
        if flags & 1:
            _, j = leb128(body, j)
    elif kind == 3:  # global: value type, mutability
        j += 2
    return kind == 0, j


def read(path):
    """Function body sizes (in order) and function names (by function index)."""
    data = open(path, "rb").read()
    i, imported, sizes, names = 8, 0, [], {}
    while i < len(data):
        section = data[i]
        length, i = leb128(data, i + 1)
        body = data[i : i + length]
        if section == 2:
            count, j = leb128(body, 0)
            for _ in range(count):
                is_function, j = skip_import(body, j)
                imported += is_function
        elif section == 10:
            count, j = leb128(body, 0)
            for _ in range(count):
                size, k = leb128(body, j)
                sizes.append(size + k - j)
                j = k + size
        elif section == 0:
            name_length, j = leb128(body, 0)
            if body[j : j + name_length] == b"name":
                j += name_length
                while j < len(body):
                    sub = body[j]
                    sub_length, j = leb128(body, j + 1)
                    if sub == 1:
                        count, k = leb128(body, j)
                        for _ in range(count):
                            index, k = leb128(body, k)
                            n, k = leb128(body, k)
                            names[index] = body[k : k + n].decode("utf-8", "replace")
                            k += n
                    j += sub_length
        i += length
    return [(size, names.get(imported + n, f"<unnamed {n}>")) for n, size in enumerate(sizes)]


def demangled(names):
    """Readable names, by binutils' c++filt (it knows Rust's manglings) when it is installed."""
    if not shutil.which("c++filt"):
        return names
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout
    lines = out.split("\n")
    return lines[: len(names)] if len(lines) >= len(names) else names


def crate_of(name):
    """The crate a function belongs to: for `<T as trait>::f`, the trait's crate."""
    impl = re.match(r"<[^<>]* as ([A-Za-z_0-9]+)(\[[0-9a-f]+\])?::", name)
    if impl:
        return impl.group(1)
    bare = re.sub(r"^[<&(]*(mut |dyn )?", "", name)
    match = re.match(r"([A-Za-z_0-9]+)(\[[0-9a-f]+\])?::", bare)
    return match.group(1) if match else bare[:40]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wasm")
    parser.add_argument("--crates", type=int, default=25)
    parser.add_argument("--functions", type=int, default=20)
    parser.add_argument("--match", default="", help="comma-separated name fragments to total")
    args = parser.parse_args()
    functions = read(args.wasm)
    readable = demangled([name for _, name in functions])
    functions = [(size, readable[n]) for n, (size, _) in enumerate(functions)]
    total = sum(size for size, _ in functions)
    print(f"code: {total} bytes in {len(functions)} functions")
    by_crate = collections.Counter()
    for size, name in functions:
        by_crate[crate_of(name)] += size
    for crate, size in by_crate.most_common(args.crates):
        print(f"{size:>9} {100 * size / total:5.1f} %  {crate}")
    for pattern in filter(None, args.match.split(",")):
        matched = [size for size, name in functions if pattern in name]
        print(f"names containing {pattern!r}: {sum(matched)} bytes ({100 * sum(matched) / total:.1f} %) in {len(matched)} functions")
    for size, name in sorted(functions, reverse=True)[: args.functions]:
        print(f"{size:>8} {name[:150]}")


if __name__ == "__main__":
    main()
