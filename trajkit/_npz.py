"""Bounded reading of the ``.npy`` members of an ``.npz`` (zip) archive: header first, data after.

``numpy.load`` decompresses a member before anything can be checked. Here a member's
``.npy`` header (dtype, shape) is read on its own, so the caller can compare it with
what it expects, and with the zip entry's declared uncompressed size, before a single
data byte is decompressed or allocated. A small file declaring a huge array costs
nothing.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from typing import cast

import numpy as np


@dataclass(frozen=True)
class NpyHeader:
    """The ``.npy`` header of one archive member.

    Attributes:
        info: the zip entry (``info.file_size`` is the declared uncompressed size).
        dtype: the array dtype; shape: the array shape; fortran_order: memory layout.
        offset: bytes before the array data (magic plus header).
    """

    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int

    @property
    def nbytes(self) -> int:
        """Bytes of array data the header promises."""
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def size_matches(self) -> bool:
        """Whether the zip entry's declared size is exactly header plus data."""
        return self.info.file_size == self.offset + self.nbytes


def members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's ``.npy`` entries by key (the name without ``.npy``, as ``numpy.load`` names them)."""
    return {i.filename.removesuffix(".npy"): i for i in zf.infolist() if i.filename.endswith(".npy")}


def read_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NpyHeader:
    """Read only the ``.npy`` header of ``info``; ValueError if it is not a supported ``.npy`` header."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{info.filename}: unsupported .npy format version {version}")
        offset = f.tell()
    return NpyHeader(info, np.dtype(dtype), tuple(int(s) for s in shape), bool(fortran), offset)


def read_data(zf: zipfile.ZipFile, header: NpyHeader) -> np.ndarray:
    """The array behind ``header`` (checked by the caller), read into one buffer of ``nbytes``.

    Raises ValueError if the member holds fewer or more bytes than the header promises
    (zipfile raises ``BadZipFile`` on a CRC mismatch).
    """
    if header.dtype.hasobject:
        raise ValueError(f"{header.info.filename}: object arrays are never loaded")
    n = header.nbytes
    buf = bytearray(n)
    view = memoryview(buf)
    with cast(io.BufferedIOBase, zf.open(header.info)) as f:
        f.read(header.offset)
        got = 0
        while got < n:
            k = f.readinto(view[got:])
            if not k:
                raise ValueError(f"{header.info.filename}: data ends after {got} of {n} bytes")
            got += k
        if f.read(1):
            raise ValueError(f"{header.info.filename}: data continues past the {n} bytes its header declares")
    arr = np.frombuffer(buf, dtype=header.dtype)
    return arr.reshape(header.shape, order="F" if header.fortran_order else "C")
