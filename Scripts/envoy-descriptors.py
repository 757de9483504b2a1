#!/usr/bin/env python3
"""Write a FileDescriptorSet of the Envoy API files listed in Protos/envoy-api-files.txt
(and everything they import), taken from the descriptors compiled into PyPI xds-protos.

usage: envoy-descriptors.py LIST OUT
"""
import importlib
import sys

from google.protobuf import descriptor_pb2, descriptor_pool


def module_for(proto_path: str) -> str:
    return proto_path[: -len(".proto")].replace("/", ".").replace("-", "_") + "_pb2"


def main() -> None:
    list_path, out_path = sys.argv[1], sys.argv[2]
    roots = [line.strip() for line in open(list_path) if line.strip() and not line.startswith("#")]
    for root in roots:
        importlib.import_module(module_for(root))
    pool = descriptor_pool.Default()
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        fd = pool.FindFileByName(name)
        for dep in fd.dependencies:
            visit(dep.name)
        ordered.append(name)

    for root in roots:
        visit(root)
    fds = descriptor_pb2.FileDescriptorSet()
    for name in ordered:
        proto = descriptor_pb2.FileDescriptorProto()
        pool.FindFileByName(name).CopyToProto(proto)
        fds.file.append(proto)
    with open(out_path, "wb") as f:
        f.write(fds.SerializeToString(deterministic=True))
    print("\n".join(ordered))


if __name__ == "__main__":
    main()
