"""The MAESTRO analytical model as a compiled kernel over a batch of packed mappings.

This is a from-scratch implementation of ``docs/cost-model.md`` (section numbers below
refer to it), MAESTRO commit 4eb08d1 semantics, quirks included. It is written in the
subset of Python that numba compiles; with ``NUMBA_DISABLE_JIT=1`` it runs as plain Python,
which is how the scalar transcription is debugged.

Units: cycles, elements, elements/cycle. C++ integer division truncates toward zero, so every
division of possibly-negative integers goes through :func:`tdiv`.

Packed mapping format (one layer, one hardware, ``B`` mappings; see ``encode.py``):
``nlev[b]``; per level ``l``: ``cluster[b, l]`` (0 for the top level), ``nd[b, l]`` directives,
and per directive ``d``: ``dvar[b, l, d]`` (a ``V_*`` code), ``dsp[b, l, d]`` (1 = SpatialMap),
``dsz[b, l, d]``, ``dofs[b, l, d]``.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

# Variable (dimension) codes. Y'/X' (YP/XP) are output rows/cols.
V_K, V_C, V_R, V_S, V_Y, V_X, V_M, V_N, V_YP, V_XP = range(10)
NV = 10
#: Directives per level after inheritance and unrolling, and levels, at most.
MAXD = 16
MAXL = 4
MAXST = 3  # states per directive: Init, Steady, Edge
POS_INIT, POS_STEADY, POS_EDGE = 0, 1, 2

# Layer types.
T_CONV, T_DSCONV, T_GEMM = 0, 1, 2

# Error codes (verdict "rejected": MAESTRO refuses or crashes).
E_OK = 0
E_RS_TILE = 1  # TemporalMap on R/S that is not the full size (parser error)
E_NO_SPATIAL = 2  # no SpatialMap in a level
E_TOO_MANY_SPATIAL = 3  # three or more SpatialMaps in a level
E_CLUSTER_GT_PES = 4  # product of cluster sizes > num_pes (SIGFPE)
E_ZERO_COMPUTE = 5  # a processed top-level case with compute delay 0 (SIGFPE)
E_UNSUPPORTED = 6  # Y and Y' (or X and X') in one level, or too many directives
E_BAD_SIZE = 7  # size or offset < 1, or a cluster size < 1
E_BAD_DIM = 8  # a directive on a dimension the layer type does not have

# Output columns of the kernel (float64).
(
    O_RUNTIME, O_MACS, O_L1_REQ, O_L2_REQ, O_PEAK_BW, O_AVG_BW, O_OFFCHIP_BW, O_AVG_PES,
    O_ENERGY, O_ARITH_INT,
    O_IN_L1R, O_IN_L1W, O_IN_L2R, O_IN_L2W,
    O_W_L1R, O_W_L1W, O_W_L2R, O_W_L2W,
    O_OUT_L1R, O_OUT_L1W, O_OUT_L2R, O_OUT_L2W,
    O_IN_DMIN, O_IN_DMAX, O_IN_DAVG, O_OUT_DMIN, O_OUT_DMAX, O_OUT_DAVG,
    O_CD_MIN, O_CD_MAX, O_CD_AVG,
    O_L1_IN, O_L1_W, O_L1_OUT, O_L2_IN, O_L2_W, O_L2_OUT,
) = range(37)
NOUT = 37

# Energy constants (DSE_cost-database): nJ per MAC and access costs in MAC units.
MAC_ENERGY_NJ = 0.00023
L1_ACCESS = 1.68
L2_ACCESS = 18.61


@njit(cache=True, _nrt=False, error_model="numpy")
def tdiv(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@njit(cache=True, _nrt=False, error_model="numpy")
def ceil_div(a: int, b: int) -> int:
    """C++ ``a/b + (a%b != 0)``."""
    q = tdiv(a, b)
    return q + (1 if a - q * b != 0 else 0)


def layer_tensors(ltype: int) -> np.ndarray:
    """Coupled variables per tensor in MAESTRO's list order: rows input, weight, output;
    -1 pads. Column 4 of row t holds the count."""
    t = np.full((3, 5), -1, np.int64)
    if ltype == T_CONV:
        t[0, 0], t[0, 1], t[0, 2], t[0, 4] = V_C, V_Y, V_X, 3
        t[1, 0], t[1, 1], t[1, 2], t[1, 3], t[1, 4] = V_K, V_C, V_R, V_S, 4
        t[2, 0], t[2, 1], t[2, 2], t[2, 4] = V_K, V_Y, V_X, 3
    elif ltype == T_DSCONV:
        t[0, 0], t[0, 1], t[0, 2], t[0, 4] = V_C, V_Y, V_X, 3
        t[1, 0], t[1, 1], t[1, 2], t[1, 4] = V_C, V_R, V_S, 3
        t[2, 0], t[2, 1], t[2, 2], t[2, 4] = V_C, V_Y, V_X, 3
    else:
        t[0, 0], t[0, 1], t[0, 4] = V_M, V_K, 2
        t[1, 0], t[1, 1], t[1, 4] = V_K, V_N, 2
        t[2, 0], t[2, 1], t[2, 4] = V_M, V_N, 2
    return t


def coupling(tens: np.ndarray) -> np.ndarray:
    """cpl[t, v] = 1 if variable v is coupled to tensor t."""
    cpl = np.zeros((3, NV), np.int64)
    for t in range(3):
        for k in range(tens[t, 4]):
            cpl[t, tens[t, k]] = 1
    return cpl


#: Unroll-missing order: input and weight dims, alphabetical (C, K, M, N, R, S, X, Y).
UNROLL_ORDER = np.array([V_C, V_K, V_M, V_N, V_R, V_S, V_X, V_Y], np.int64)


# --------------------------------------------------------------------------------------------
# Section 2: building the cluster hierarchy for one mapping.
# --------------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False, error_model="numpy")
def build_levels(ltype, ldims, stride_y, stride_x, num_pes, nlev, cluster, nd_raw, dvar_raw,
                 dsp_raw, dsz_raw, dofs_raw, nd, dvar, dsp, dsz, dofs, sdim, nsub, cpl, bscr):
    """Fill the per-level directive lists (conversion, inheritance, unrolling, stride) and the
    static dims ``sdim[l, v]`` and sub-cluster counts ``nsub[l]``. Returns an error code.
    ``cpl``: tensor coupling (see :func:`coupling`); ``bscr``: (5, MAXD) int scratch."""
    alpha = UNROLL_ORDER
    # Cluster structure (2.2).
    u = 1
    for l in range(1, nlev):
        if cluster[l] < 1:
            return E_BAD_SIZE
        u *= cluster[l]
    top_n = num_pes // u
    if top_n == 0:
        return E_CLUSTER_GT_PES
    nsub[0] = top_n
    for l in range(1, nlev):
        nsub[l] = cluster[l]
    for v in range(NV):
        sdim[0, v] = ldims[v]
    for l in range(nlev):
        nsp = 0
        for d in range(nd_raw[l]):
            v = dvar_raw[l, d]
            if dsz_raw[l, d] < 1 or dofs_raw[l, d] < 1:
                return E_BAD_SIZE
            if ltype == T_GEMM:
                if not (v == V_K or v == V_M or v == V_N):
                    return E_BAD_DIM
            elif v == V_M or v == V_N:
                return E_BAD_DIM
            elif ltype == T_DSCONV and v == V_K:  # MAESTRO: "Dimension K not found"
                return E_BAD_DIM
            if dsp_raw[l, d] == 1:
                nsp += 1
            elif v == V_R or v == V_S:
                # Parser check: TemporalMap on R/S must be size == offset == full dim.
                if dsz_raw[l, d] != ldims[v] or dofs_raw[l, d] != ldims[v]:
                    return E_RS_TILE
        if nsp == 0:
            return E_NO_SPATIAL
        if nsp >= 3:
            return E_TOO_MANY_SPATIAL
        # Output-to-input conversion (2.3).
        has_y = False
        has_x = False
        r_sz = sdim[l, V_R]
        s_sz = sdim[l, V_S]
        for d in range(nd_raw[l]):
            v = dvar_raw[l, d]
            if v == V_Y:
                has_y = True
            elif v == V_X:
                has_x = True
            elif v == V_R:
                r_sz = dsz_raw[l, d]
            elif v == V_S:
                s_sz = dsz_raw[l, d]
        own, tmp_var, tmp_sp, tmp_sz, tmp_ofs = bscr[0], bscr[1], bscr[2], bscr[3], bscr[4]
        for v in range(NV):
            own[v] = 0
        k = 0
        for d in range(nd_raw[l]):
            v = dvar_raw[l, d]
            sz = dsz_raw[l, d]
            if v == V_YP:
                if has_y:
                    return E_UNSUPPORTED
                v = V_Y
                sz = sz + r_sz - 1
            elif v == V_XP:
                if has_x:
                    return E_UNSUPPORTED
                v = V_X
                sz = sz + s_sz - 1
            tmp_var[k] = v
            tmp_sp[k] = dsp_raw[l, d]
            tmp_sz[k] = sz
            tmp_ofs[k] = dofs_raw[l, d]
            own[v] = 1
            k += 1
        # Inherit (pushed to the front, so in reverse upper order), then own, then unroll.
        cnt = 0
        if l > 0:
            for d in range(nd[l - 1] - 1, -1, -1):
                v = dvar[l - 1, d]
                if own[v] == 0:
                    if cnt >= MAXD:
                        return E_UNSUPPORTED
                    dvar[l, cnt] = v
                    dsp[l, cnt] = 0
                    dsz[l, cnt] = dsz[l - 1, d]
                    dofs[l, cnt] = dofs[l - 1, d]
                    cnt += 1
        for d in range(k):
            if cnt >= MAXD:
                return E_UNSUPPORTED
            dvar[l, cnt] = tmp_var[d]
            dsp[l, cnt] = tmp_sp[d]
            dsz[l, cnt] = tmp_sz[d]
            dofs[l, cnt] = tmp_ofs[d]
            cnt += 1
        for i in range(8):
            v = alpha[i]
            if cpl[0, v] == 0 and cpl[1, v] == 0:
                continue
            present = False
            for d in range(cnt):
                if dvar[l, d] == v:
                    present = True
            if not present:
                if cnt >= MAXD:
                    return E_UNSUPPORTED
                dvar[l, cnt] = v
                dsp[l, cnt] = 0
                dsz[l, cnt] = sdim[l, v]
                dofs[l, cnt] = sdim[l, v]
                cnt += 1
        nd[l] = cnt
        # Stride (3.3).
        for d in range(cnt):
            v = dvar[l, d]
            if v == V_Y:
                st = stride_y
                rf = ldims[V_R]
            elif v == V_X:
                st = stride_x
                rf = ldims[V_S]
            else:
                continue
            if st != 1 and dsz[l, d] >= rf:
                out = tdiv(dsz[l, d] + st - rf, st)
                dsz[l, d] = out * min(st, rf) + max(rf - st, 0)
                if l > 0 and rf < st:
                    dofs[l, d] = out * rf
                else:
                    dofs[l, d] = out * st
        # Static dims of the next level (2.4).
        if l + 1 < nlev:
            for v in range(NV):
                sdim[l + 1, v] = sdim[l, v]
            for d in range(cnt):
                v = dvar[l, d]
                sdim[l + 1, v] = min(dsz[l, d], sdim[l, v])
            sdim[l + 1, V_YP] = sdim[l + 1, V_Y] - sdim[l + 1, V_R] + 1
            sdim[l + 1, V_XP] = sdim[l + 1, V_X] - sdim[l + 1, V_S] + 1
    return E_OK


# --------------------------------------------------------------------------------------------
# Section 3: static tables.
# --------------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False, error_model="numpy")
def build_tables(ltype, l, nd, dvar, dsp, dsz, dofs, sdim, nsub, tM, tMe, tUq, tUqe, ne, fsp):
    """Mapping-size tables (3.1) per variable, and the first SpatialMap's edge info (3.2)."""
    n = nd[l]
    for d in range(n):
        v = dvar[l, d]
        D = sdim[l, v]
        sz = dsz[l, d]
        ofs = dofs[l, d]
        steady = max(0, tdiv(D - sz, ofs))
        has_edge = (steady * ofs + sz < D) or (sz > D)
        tM[l, v] = sz
        uq = min(sz, ofs)
        if dsp[l, d] == 0 and D <= sz:
            uq = 0
        tUq[l, v] = uq
        edge_sz = D - (steady + 1) * ofs
        if edge_sz < 0:
            edge_sz = D
        tMe[l, v] = edge_sz if has_edge else sz
        tUqe[l, v] = max(ofs - (sz - edge_sz), 0)
    if ltype != T_GEMM:
        for d in range(n):
            v = dvar[l, d]
            if v == V_Y or v == V_X:
                o = V_YP if v == V_Y else V_XP
                w = V_R if v == V_Y else V_S
                tM[l, o] = tM[l, v] - tM[l, w] + 1
                tUq[l, o] = min(dofs[l, d], dsz[l, d])
                tMe[l, o] = tMe[l, v] - tMe[l, w] + 1
                tUqe[l, o] = min(dofs[l, d], tMe[l, o])
    # 3.2 for the first SpatialMap.
    f = -1
    for d in range(n):
        if dsp[l, d] == 1:
            f = d
            break
    fsp[l] = f
    v = dvar[l, f]
    D = sdim[l, v]
    sz = dsz[l, f]
    ofs = dofs[l, f]
    ns = nsub[l]
    full_cov = ofs * (ns - 1) + sz
    if D > full_cov:
        steady_sp = tdiv(tdiv(D - sz, ofs) + 1, ns) - 1
        rem = D - (steady_sp + 1) * ofs * ns
        e = 1 if rem < sz else tdiv(rem - sz, ofs) + 1
    else:
        e = tdiv(D - sz, ofs) + 1 if D > sz else 1
        if D > sz and ofs * (e - 1) + sz < D:
            e += 1
    if D <= sz:
        e = 1
    ne[l] = e


# --------------------------------------------------------------------------------------------
# Section 5: per-case traffic and compute.
#
# Every per-case quantity is a product of per-directive factors (5.1-5.3). The helpers below
# compute all the variants a case needs (first / non-first PE, edge-edge PE, ...) in one pass
# over one packed array ``W``: numba reference-counts every array argument of a call, so one
# array per call keeps the hot loop free of that overhead.
#
# W columns 0..n-1 are the level's directives; columns OUT0..OUT0+2 are the output tensor's
# coupled variables. Rows (per column): the variable, whether its directive is a SpatialMap,
# the table entries M, Me, Uq, Uqe (for output columns: of Y'/X' for Y/X), coupling to each
# tensor, and the case's state of the variable (position, edge, unrolled, init-edge). Output
# columns also hold MeW = Me of the variable as written (input-centric Y/X).
# --------------------------------------------------------------------------------------------
W_VAR, W_SP, W_M, W_ME, W_UQ, W_UQE, W_C0, W_C1, W_C2, W_POS, W_EDGE, W_UNR, W_IE, W_MEW = range(14)
W_SZ, W_OFS, W_LAST = 14, 15, 16  # directive size, offset, last directive on its variable
W_SMV = 17  # 3 rows: per tensor, its spatially mapped variables (column 4: count)
W_OCOL = 21  # per directive: its output column (OUT0 + k) if it is its variable's first, else -1
W_SCAL = 20  # level scalars: directives, sub-clusters, edge clusters, first SpatialMap,
#              positive, non-negative, ingress and egress bounds
W_ROWS = 22
OUT0 = MAXD
W_COLS = MAXD + 3


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def ingress_variants(t, W, n, chg, ne_l):
    """5.1 ``PEIngress`` of input/weight tensor ``t`` (row W_C0 + t) for the current case:
    (first PE, non-first PE, first edge-edge PE, non-first edge-edge PE)."""
    cr = W_C0 + t
    a = 1  # first, not edge-edge
    b = 1  # non-first
    c = 1  # first, edge-edge
    e = 1  # non-first, edge-edge
    if chg == -1:
        for d in range(n):
            if W[cr, d] == 0:
                continue
            M = W[W_M, d]
            Me = W[W_ME, d]
            if W[W_SP, d] == 0:
                f = Me if W[W_EDGE, d] else M
                a *= f
                b *= f
                c *= f
                e *= f
            elif W[W_EDGE, d]:
                if ne_l == 1:
                    a *= Me
                    c *= Me
                    e *= Me  # non-first, not edge-edge: factor skipped
                else:
                    a *= M
                    b *= M
                    c *= Me
                    e *= Me
            else:
                a *= M
                b *= M
                c *= M
                e *= M
        return a, b, c, e
    inited = False
    for d in range(chg + 1, n):
        if W[cr, d] != 0 and W[W_POS, d] == POS_INIT and W[W_UNR, d] == 0:
            inited = True
            break
    if W[cr, chg] == 0:
        return 0, 0, 0, 0  # the tensor did not change: full temporal reuse
    for d in range(n):
        if W[cr, d] == 0:
            continue
        M = W[W_M, d]
        Me = W[W_ME, d]
        pos = W[W_POS, d]
        if W[W_SP, d] == 0:
            if pos == POS_INIT:
                f = Me if W[W_EDGE, d] else M
            elif d == chg and not inited:
                f = max(W[W_UQ, d], 1)
            else:
                f = M
            a *= f
            b *= f
            c *= f
            e *= f
        else:
            a *= M
            c *= Me
            if pos == POS_INIT:
                if d <= chg:
                    b *= M
                    e *= Me
                else:
                    b *= W[W_UQ, d]
                    e *= W[W_UQE, d]
            elif (not inited) and d == chg:
                b *= W[W_UQ, d]
                e *= W[W_UQE, d]
            else:
                b *= M
                e *= Me
    return a, b, c, e


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def egress_variants(W, n, ne_l):
    """5.3 ``PEEgress`` variants for the current case:
    (first, non-first, first edge-edge, non-first edge-edge) without partial sums, then with
    partial sums: (first, first edge-edge, non-first edge-edge without edge reuse)."""
    a = 1
    b = 1
    c = 1
    e = 1
    pa = 1
    pc = 1
    pe = 1
    # Partial-sum group: directives on variables not coupled to the output.
    for d in range(n):
        if W[W_C2, d] != 0:
            continue
        M = W[W_M, d]
        Me = W[W_ME, d]
        pos = W[W_POS, d]
        if W[W_SP, d] == 0:
            f = Me if W[W_EDGE, d] else M
            pa *= f
            pc *= f
            pe *= f
            continue
        uq = W[W_UQ, d]
        uq1 = uq if uq != 0 else 1
        if pos == POS_STEADY or (pos == POS_INIT and W[W_IE, d] == 0):
            pa *= M
            pc *= M
            pe *= uq1
        elif pos == POS_INIT:  # init edge-edge: Me in this group, whatever ne
            pa *= M
            pc *= Me
            pe *= Me
        elif ne_l == 1:  # Edge
            pa *= Me
            pc *= Me
            pe *= Me
        else:
            pa *= M
            pc *= W[W_UQE, d]
            pe *= W[W_UQE, d]
    # Output group: each output variable once, through its first directive.
    for k in range(OUT0, OUT0 + 3):
        if W[W_SP, k] < 0:
            continue
        M = W[W_M, k]
        Me = W[W_ME, k]
        pos = W[W_POS, k]
        if W[W_SP, k] == 0:
            if pos == POS_INIT:
                f = Me if W[W_EDGE, k] else M
            elif pos == POS_STEADY:
                f = M
            else:
                f = Me
            a *= f
            b *= f
            c *= f
            e *= f
            pa *= f
            pc *= f
            pe *= f
            continue
        uq = W[W_UQ, k]
        uq1 = uq if uq != 0 else 1
        if pos == POS_STEADY or (pos == POS_INIT and W[W_IE, k] == 0):
            a *= M
            b *= uq1
            c *= M
            e *= uq1
            pa *= M
            pc *= M
            pe *= uq1
        elif pos == POS_INIT:  # init edge-edge
            a *= M
            b *= uq1
            pa *= M
            if ne_l == 1:
                c *= Me
                e *= Me
                pc *= Me
            else:
                c *= W[W_UQE, k]
                e *= W[W_UQE, k]
                pc *= W[W_UQE, k]
            pe *= Me  # no edge reuse
        elif ne_l == 1:  # Edge, one edge sub-cluster: Me of the variable as written
            MeW = W[W_MEW, k]
            a *= MeW
            c *= MeW
            e *= MeW
            pa *= MeW
            pc *= MeW
            pe *= MeW
        else:
            a *= M
            b *= uq1
            c *= W[W_UQE, k]
            e *= W[W_UQE, k]
            pa *= M
            pc *= W[W_UQE, k]
            pe *= W[W_UQE, k]
    return a, b, c, e, pa, pc, pe


# --------------------------------------------------------------------------------------------
# Sections 4 and 6: iteration cases, per-level accumulation, and the level hierarchy.
#
# MAESTRO recurses: each processed case of a level analyzes the level below on that case's
# sub-cluster dims. We do the same work without recursion (numba cannot cache recursive
# functions): a top-down COLLECT pass lists, per level, the distinct sub-cluster dim vectors in
# the order MAESTRO first meets them; a bottom-up FULL pass analyzes each vector once, looking up
# the level below in a hash table. Same results, each inner sub-problem solved once.
# --------------------------------------------------------------------------------------------
MODE_COLLECT, MODE_FULL = 0, 1
VEC_CAP = 512  # distinct dim vectors per level and mapping
HASH_CAP = 2048  # open-addressing slots per level (power of two, > 2 * VEC_CAP)
HASH_MULT = np.array([1000003, 999983, 999979, 999961, 999959, 999953, 999931, 999917,
                      999907, 999883], np.int64)

# Scratch rows (SC[row, directive or variable or tensor]) of one level analysis.
SC_NST = 0  # states per directive
SC_POS = 1  # 3 rows: position of state k
SC_OCC = 4  # 3 rows: occurrences of state k
SC_UNR = 7  # 3 rows: unrolled flag
SC_IE = 10  # 3 rows: init-edge flag
SC_EE = 13  # 3 rows: sp_edge_edge flag
SC_DIG = 16  # odometer digits
SC_VPOS, SC_VEDGE, SC_VIE, SC_VUNR, SC_VSPEE = 17, 18, 19, 20, 21  # per-variable case state
SC_SUB, SC_SUBEE = 22, 23  # sub-cluster dims (normal and edge-edge analyses)
SC_ACC = 24  # 10 rows of per-tensor accumulators
SC_SIT = 34  # 3 rows: per tensor spatially mapped, edge, sp_ee
SC_ROWS = 37
SC_COLS = MAXD


@njit(cache=True, _nrt=False, error_model="numpy")
def vec_find(l, vec, add, vkeys, vcount, hslot, vslot):
    """Index of dim vector ``vec`` among level ``l``'s vectors; with ``add``, append it if new.
    Returns -1 if absent (or -2 if the table is full)."""
    h = 0
    for v in range(NV):
        h += vec[v] * HASH_MULT[v]
    pos = h & (HASH_CAP - 1)
    while True:
        i = hslot[l, pos]
        if i < 0:
            break
        same = True
        for v in range(NV):
            if vkeys[l, i, v] != vec[v]:
                same = False
                break
        if same:
            return i
        pos = (pos + 1) & (HASH_CAP - 1)
    if not add:
        return -1
    i = vcount[l]
    if i >= VEC_CAP:
        return -2
    for v in range(NV):
        vkeys[l, i, v] = vec[v]
    hslot[l, pos] = i
    vslot[l, i] = pos
    vcount[l] = i + 1
    return i


@njit(cache=True, _nrt=False, error_model="numpy")
def fill_level_array(l, W3, nd, dvar, dsp, dsz, dofs, nsub, ne, fsp, tM, tMe, tUq, tUqe,
                     firstdir, lastdir, tens, cpl, outent):
    """The static rows of level ``l``'s packed array ``W3[l]`` (see section 5)."""
    n = nd[l]
    for d in range(n):
        v = dvar[l, d]
        W3[l, W_VAR, d] = v
        W3[l, W_SP, d] = dsp[l, d]
        W3[l, W_SZ, d] = dsz[l, d]
        W3[l, W_OFS, d] = dofs[l, d]
        W3[l, W_LAST, d] = 1 if lastdir[l, v] == d else 0
        W3[l, W_M, d] = tM[l, v]
        W3[l, W_ME, d] = tMe[l, v]
        W3[l, W_UQ, d] = tUq[l, v]
        W3[l, W_UQE, d] = tUqe[l, v]
        W3[l, W_C0, d] = cpl[0, v]
        W3[l, W_C1, d] = cpl[1, v]
        W3[l, W_C2, d] = cpl[2, v]
    for k in range(3):
        col = OUT0 + k
        W3[l, W_SP, col] = -1
        if k < tens[2, 4]:
            v = tens[2, k]
            d = firstdir[l, v]
            if d >= 0:
                ev = outent[v]
                W3[l, W_VAR, col] = v
                W3[l, W_SP, col] = dsp[l, d]
                W3[l, W_M, col] = tM[l, ev]
                W3[l, W_ME, col] = tMe[l, ev]
                W3[l, W_UQ, col] = tUq[l, ev]
                W3[l, W_UQE, col] = tUqe[l, ev]
                W3[l, W_MEW, col] = tMe[l, v]
    # Per tensor, its spatially mapped variables (first directive is a SpatialMap), in the
    # tensor's list order (5.2); column 4 holds the count.
    for t in range(3):
        cnt = 0
        for k in range(tens[t, 4]):
            v = tens[t, k]
            d = firstdir[l, v]
            if d >= 0 and dsp[l, d] == 1:
                W3[l, W_SMV + t, cnt] = v
                cnt += 1
        W3[l, W_SMV + t, 4] = cnt
    W3[l, W_SCAL, 0] = n
    W3[l, W_SCAL, 1] = nsub[l]
    W3[l, W_SCAL, 2] = ne[l]
    W3[l, W_SCAL, 3] = fsp[l]
    # Whether every table entry a partial-sum product can use (M, Me, and Me as written of the
    # output variables) is positive: then every case is processed (psums > 0).
    positive = 1
    for col in range(W_COLS):
        if (col < n or col >= OUT0) and W3[l, W_SP, col] >= 0:
            if W3[l, W_M, col] <= 0 or W3[l, W_ME, col] <= 0:
                positive = 0
            if col >= OUT0 and W3[l, W_MEW, col] <= 0:
                positive = 0
    W3[l, W_SCAL, 4] = positive
    # Upper bounds (elements) of a case's ingress and egress traffic, for the lazy evaluation
    # of inner levels (see analyze_level). Valid when no table entry is negative.
    nonneg = 1
    b_in, b_w, b_out = 1.0, 1.0, 1.0
    for col in range(W_COLS):
        if (col < n or col >= OUT0) and W3[l, W_SP, col] >= 0:
            f = max(1, W3[l, W_M, col], W3[l, W_ME, col], W3[l, W_UQ, col], W3[l, W_UQE, col])
            if min(W3[l, W_M, col], W3[l, W_ME, col], W3[l, W_UQ, col], W3[l, W_UQE, col]) < 0:
                nonneg = 0
            if col >= OUT0:
                if W3[l, W_MEW, col] < 0:
                    nonneg = 0
                b_out *= max(f, W3[l, W_MEW, col])
            else:
                if W3[l, W_C0, col] == 1:
                    b_in *= f
                if W3[l, W_C1, col] == 1:
                    b_w *= f
    mult = max(nsub[l], ne[l] + 1)
    cap = 4.0e18
    W3[l, W_SCAL, 5] = nonneg
    W3[l, W_SCAL, 6] = np.int64(min(cap, mult * (b_in + b_w)))
    W3[l, W_SCAL, 7] = np.int64(min(cap, mult * b_out))
    # Whether the level has one SpatialMap and one directive per variable (see closed_form).
    nsp = 0
    simple = 1
    for d in range(n):
        W3[l, W_OCOL, d] = -1
        nsp += dsp[l, d]
        if lastdir[l, dvar[l, d]] != d:
            simple = 0
        for k in range(3):
            if W3[l, W_SP, OUT0 + k] >= 0 and W3[l, W_VAR, OUT0 + k] == dvar[l, d] \
                    and firstdir[l, dvar[l, d]] == d:
                W3[l, W_OCOL, d] = OUT0 + k
    W3[l, W_SCAL, 8] = 1 if (simple == 1 and nsp == 1) else 0


@njit(cache=True, _nrt=False, error_model="numpy")
def closed_form(W, SC, n, ns, ne_l, hops_lat):
    """Runtime and average activity of an innermost level whose every case is lazy (see
    analyze_level), without enumerating its cases.

    There a case's delay is its partial-sum count (plus the NoC head latency in the all-Init
    case), and the partial sums are a product of one factor per directive, each depending on
    that directive's own state only (one directive per variable). Summing occurrence-weighted
    products over the Cartesian product of states factorizes into a product of per-directive
    sums, split by the state of the single SpatialMap (which selects the edge-edge variant).
    Returns (runtime cycles, average active sub-clusters).
    """
    s = 0
    for d in range(n):
        if W[W_SP, d] == 1:
            s = d
    sum_a = 1  # per-directive sums for the plain variant ...
    sum_c = 1  # ... and for the edge-edge variant
    for d in range(n):
        if d == s:
            continue
        fa_sum = 0
        fc_sum = 0
        for k in range(SC[SC_NST, d]):
            fa, fc = directive_psum_factors(W, SC, d, k, ne_l)
            occ = SC[SC_OCC + k, d]
            fa_sum += occ * fa
            fc_sum += occ * fc
        sum_a *= fa_sum
        sum_c *= fc_sum
    runtime = 0
    active = 0.0
    occ_s = 0
    for k in range(SC[SC_NST, s]):
        fa, fc = directive_psum_factors(W, SC, s, k, ne_l)
        occ = SC[SC_OCC + k, s]
        edge = SC[SC_POS + k, s] == POS_EDGE or SC[SC_IE + k, s] != 0
        # The edge-edge variant is CPsums' choice when the output's spatial map is edge with
        # one edge sub-cluster and the edge-edge flag (5.3).
        use_c = W[W_C2, s] == 1 and edge and ne_l == 1 and SC[SC_EE + k, s] != 0
        runtime += occ * (fc * sum_c if use_c else fa * sum_a)
        active += occ * (ne_l if edge else ns)
        occ_s += occ
    # Every other directive's occurrences multiply numerator and denominator of the average.
    return runtime + hops_lat, active / occ_s


@njit(cache=True, _nrt=False, error_model="numpy")
def directive_psum_factors(W, SC, d, k, ne_l):
    """Directive d's factor of CPsums in state k: (first PE, first edge-edge PE), as in
    :func:`egress_variants` (pa, pc) with the directive's own state."""
    pos = SC[SC_POS + k, d]
    ie = SC[SC_IE + k, d] != 0
    edge = pos == POS_EDGE or ie
    col = W[W_OCOL, d]
    if col < 0:  # partial-sum group: the directive's own entries
        M = W[W_M, d]
        Me = W[W_ME, d]
        if W[W_SP, d] == 0:
            f = Me if edge else M
            return f, f
        if pos == POS_STEADY or (pos == POS_INIT and not ie):
            return M, M
        if pos == POS_INIT:
            return M, Me
        if ne_l == 1:
            return Me, Me
        return M, W[W_UQE, d]
    M = W[W_M, col]
    Me = W[W_ME, col]
    if W[W_SP, col] == 0:
        if pos == POS_INIT:
            f = Me if edge else M
        elif pos == POS_STEADY:
            f = M
        else:
            f = Me
        return f, f
    if pos == POS_STEADY or (pos == POS_INIT and not ie):
        return M, M
    if pos == POS_INIT:
        return M, (Me if ne_l == 1 else W[W_UQE, col])
    if ne_l == 1:
        return W[W_MEW, col], W[W_MEW, col]
    return M, W[W_UQE, col]


@njit(cache=True, _nrt=False, error_model="numpy")
def analyze_level(mode, l, cur, nlev, W3, tens, outent, hwi, out, info, vkeys, vvals, vcount,
                  hslot, vslot, SC, want_l1):
    """Analyze cluster level ``l`` with current dims ``cur`` (section 6.2).

    MODE_COLLECT (non-innermost levels): register the sub-cluster dim vectors that the processed
    cases need at level l+1. MODE_FULL: compute; results of level l+1 are looked up in
    ``vvals``. Returns (runtime cycles, average active sub-clusters, sum of L1 requirements).
    At the top level in MODE_FULL it fills ``out``. ``info[2]`` receives an error code.
    ``want_l1``: the caller needs the L1 requirement (the first innermost analysis, 6.1).
    """
    W = W3[l]
    n = W[W_SCAL, 0]
    ns = W[W_SCAL, 1]
    ne_l = W[W_SCAL, 2]
    fsp_l = W[W_SCAL, 3]
    innermost = l == nlev - 1
    top = l == 0
    full = mode == MODE_FULL
    hops_lat, noc_bw, offchip_bw, simd = hwi[0], hwi[1], hwi[2], hwi[3]
    # Section 4: states per directive from the current dims.
    for d in range(n):
        D = cur[W[W_VAR, d]]
        sz = W[W_SZ, d]
        ofs = W[W_OFS, d]
        SC[SC_POS, d] = POS_INIT
        SC[SC_OCC, d] = 1
        SC[SC_EE, d] = 0
        SC[SC_EE + 1, d] = 0
        SC[SC_EE + 2, d] = 0
        SC[SC_DIG, d] = 0
        k = 1
        if W[W_SP, d] == 0:
            SC[SC_UNR, d] = D <= sz
            SC[SC_IE, d] = D < sz
            s = tdiv(D - sz, ofs)
            if sz < D and s > 0:
                SC[SC_POS + k, d] = POS_STEADY
                SC[SC_OCC + k, d] = s
                SC[SC_UNR + k, d] = 0
                SC[SC_IE + k, d] = 0
                k += 1
            if not (D < sz) and s * ofs + sz < D:
                SC[SC_POS + k, d] = POS_EDGE
                SC[SC_OCC + k, d] = 1
                SC[SC_UNR + k, d] = 0
                SC[SC_IE + k, d] = 0
                k += 1
        else:
            cov = sz + ofs * (ns - 1)
            unr = D <= cov
            SC[SC_UNR, d] = unr
            SC[SC_IE, d] = D < cov
            SC[SC_EE, d] = D < cov
            s = tdiv(tdiv(D - sz, ofs) + 1, ns) - 1
            if cov < D and s > 0:
                SC[SC_POS + k, d] = POS_STEADY
                SC[SC_OCC + k, d] = s
                SC[SC_UNR + k, d] = 0
                SC[SC_IE + k, d] = 0
                k += 1
            if D >= cov and not unr and (s + 1) * ofs * ns + cov > D and s * ofs * ns + cov != D:
                rem = D - (s + 1) * ofs * ns
                a = 1 if rem < sz else tdiv(rem - sz, ofs) + 1
                SC[SC_POS + k, d] = POS_EDGE
                SC[SC_OCC + k, d] = 1
                SC[SC_UNR + k, d] = 0
                SC[SC_IE + k, d] = 0
                SC[SC_EE + k, d] = (a - 1) * ofs + sz < rem
                k += 1
        SC[SC_NST, d] = k
    total = 1
    for d in range(n):
        total *= SC[SC_NST, d]
    positive = W[W_SCAL, 4] == 1  # every factor of the partial sums is positive
    # Lazy bandwidth: an inner level reports only its runtime (and activity), and a case's delay
    # is max(ingress delay, compute, egress delay). Where the traffic bounds of the level cannot
    # make a NoC delay exceed the compute delay, the traffic of the case is not needed (with
    # GAMMA's NoC bandwidth of 81,920,000 this holds for every case). Exact, not an estimate.
    # The all-Init case adds the ingress delay to the compute delay; when every entry is
    # positive its ingress is at least 1 element, so a bound of at most noc_bw fixes that delay
    # at hops * hop latency too.
    lazy = full and innermost and not top and W[W_SCAL, 5] == 1
    lazy_d = 0
    lazy_init = False
    if lazy:
        lazy_d = max(hops_lat + ceil_div(W[W_SCAL, 6], noc_bw) - 1,
                     hops_lat + ceil_div(W[W_SCAL, 7], noc_bw) - 1)
        lazy_init = positive and W[W_SCAL, 6] <= noc_bw
        if (lazy_init and lazy_d <= 1 and simd == 1 and not want_l1 and W[W_SCAL, 8] == 1):
            rt, aa = closed_form(W, SC, n, ns, ne_l, hops_lat)
            return rt, aa, 0
    for i in range(SC_ACC, SC_ACC + 10):
        for t in range(3):
            SC[i, t] = 0
    l2_req, l1_req, l2_rd, l2_wr = SC_ACC, SC_ACC + 1, SC_ACC + 2, SC_ACC + 3
    l1_rd, l1_wr, si = SC_ACC + 4, SC_ACC + 5, SC_ACC + 6
    imax = np.iinfo(np.int64).max
    dmin0, dmin1, dmin2 = imax, imax, imax
    dmax0, dmax1, dmax2 = 0, 0, 0
    dsum0, dsum1, dsum2 = 0.0, 0.0, 0.0
    runtime = 0
    macs = 0
    active = 0.0
    sum_occ = 0
    peak_bw = 0
    avg_bw_sum = 0
    off = 0
    buf_done = False
    arith = 0.0
    se = 0
    pm = 0
    for c in range(total):
        # MAESTRO's state index is ceil(c / f_d) mod n_d (section 4): case 0 is all-Init and
        # case c >= 1 takes the mixed-radix digits of c - 1, each plus one (mod n_d). SC_DIG
        # holds the digits of c - 1 as an odometer, so no division is needed.
        if c >= 2:
            d = n - 1
            while d >= 0:
                SC[SC_DIG, d] += 1
                if SC[SC_DIG, d] < SC[SC_NST, d]:
                    break
                SC[SC_DIG, d] = 0
                d -= 1
        occ = 1
        for d in range(n):
            k = 0
            if c > 0:
                k = SC[SC_DIG, d] + 1
                if k == SC[SC_NST, d]:
                    k = 0
            occ *= SC[SC_OCC + k, d]
            if W[W_LAST, d] == 1:  # a variable takes its last directive's state
                v = W[W_VAR, d]
                pos = SC[SC_POS + k, d]
                SC[SC_VPOS, v] = pos
                SC[SC_VIE, v] = SC[SC_IE + k, d]
                SC[SC_VUNR, v] = SC[SC_UNR + k, d]
                SC[SC_VSPEE, v] = SC[SC_EE + k, d]
                SC[SC_VEDGE, v] = 1 if (pos == POS_EDGE or SC[SC_IE + k, d] != 0) else 0
        chg = -1
        psums = 1
        omapped, oedge, ospee = False, False, False
        if full or not positive:  # a COLLECT pass needs psums only when it can be <= 0
            for d in range(n):
                v = W[W_VAR, d]
                W[W_POS, d] = SC[SC_VPOS, v]
                W[W_EDGE, d] = SC[SC_VEDGE, v]
                W[W_UNR, d] = SC[SC_VUNR, v]
                W[W_IE, d] = SC[SC_VIE, v]
                if SC[SC_VPOS, v] != POS_INIT:
                    chg = d
            for col in range(OUT0, OUT0 + 3):
                if W[W_SP, col] >= 0:
                    v = W[W_VAR, col]
                    W[W_POS, col] = SC[SC_VPOS, v]
                    W[W_EDGE, col] = SC[SC_VEDGE, v]
                    W[W_IE, col] = SC[SC_VIE, v]
            # 5.2 spatial situation of each tensor: mapped, edge, sp_ee.
            for t in range(3):
                cnt = W[W_SMV + t, 4]
                SC[SC_SIT, t] = 1 if cnt > 0 else 0
                SC[SC_SIT + 1, t] = 0
                SC[SC_SIT + 2, t] = 0
                for k in range(cnt):
                    v = W[W_SMV + t, k]
                    if SC[SC_VEDGE, v]:
                        SC[SC_SIT + 1, t] = 1
                    SC[SC_SIT + 2, t] = SC[SC_VSPEE, v]
            # 5.3 output side: critical-path partial sums decide whether a case is processed.
            ea, eb, ec, ee_, pa, pc, pe = egress_variants(W, n, ne_l)
            omapped = SC[SC_SIT, 2] != 0
            oedge = SC[SC_SIT + 1, 2] != 0
            ospee = SC[SC_SIT + 2, 2] != 0
            psums = pc if (omapped and oedge and ne_l == 1 and ospee) else pa
            if not full and psums <= 0:
                continue
        if lazy and (buf_done or not want_l1) and (chg != -1 or lazy_init) and psums > 0:
            compute = ceil_div(psums, simd)
            if compute >= lazy_d:
                runtime += occ * (compute + hops_lat if chg == -1 else compute)
                sum_occ += occ
                vf = W[W_VAR, fsp_l]
                active += occ * float(ne_l if SC[SC_VEDGE, vf] else ns)
                continue
        if full:
            # 5.2 spatial ingress of input and weight.
            for t in range(2):
                a, b, c2, e2 = ingress_variants(t, W, n, chg, ne_l)
                if SC[SC_SIT, t] == 0:
                    r = a
                elif SC[SC_SIT + 1, t] == 0:
                    r = a + (ns - 1) * b
                else:
                    ee = SC[SC_SIT + 2, t]
                    r = c2 if (ne_l == 1 and ee != 0) else a
                    if ne_l > 1:
                        r += max(ne_l - 1 - ee, 0) * b + ee * e2
                SC[si, t] = r
            # Spatial egress.
            if not omapped:
                se = ea
            elif not oedge:
                se = ea + (ns - 1) * eb
            else:
                ee = 1 if ospee else 0
                se = ec if (ne_l == 1 and ospee) else ea
                if ne_l > 1:
                    se += max(ne_l - 1 - ee, 0) * eb + ee * ee_
            # Partial-sum mapping size (MACs over the sub-cluster array this step).
            pedge, pspee = oedge, ospee
            for d in range(n):
                if W[W_SP, d] == 1:
                    v = W[W_VAR, d]
                    if SC[SC_VEDGE, v]:
                        pedge = True
                    pspee = SC[SC_VSPEE, v] != 0
            if not pedge:
                pm = ns * pa
            else:
                ee = 1 if pspee else 0
                pm = pc if (ne_l == 1 and pspee) else pa
                if ne_l > 1:
                    pm += max(ne_l - 1 - ee, 0) * pa + ee * pe
            # 6.1 buffer requirements, repeated until a case is processed.
            if not buf_done:
                for t in range(3):
                    mv = 1
                    for d in range(n):
                        if W[W_C0 + t, d] == 1:
                            mv *= W[W_M, d]
                    vol = 1
                    for k in range(tens[t, 4]):
                        v = tens[t, k]
                        vol *= cur[outent[v]] if t == 2 else cur[v]
                    if t < 2:
                        SC[l2_req, t] += 2 * SC[si, t]
                        SC[l1_req, t] += 2 * mv
                        SC[l2_wr, t] = vol
                    else:
                        SC[l2_req, 2] = 2 * se
                        SC[l1_req, 2] = 2 * mv
                        SC[l2_rd, 2] = vol
            # 6.2 accumulation.
            SC[l2_wr, 2] += occ * se
            SC[l1_wr, 2] += occ * pm
            SC[l1_rd, 2] += occ * pm
            if psums <= 0:
                continue
            buf_done = True
            for t in range(2):
                SC[l2_rd, t] += occ * SC[si, t]
                SC[l1_wr, t] = SC[l2_rd, t]
                SC[l1_rd, t] += occ * pm
        act = 0.0
        compute = 0
        if innermost:
            compute = ceil_div(psums, simd)
        else:
            # 6.3 sub-cluster dims; an edge-edge sub-cluster gets its own analysis.
            vf = W[W_VAR, fsp_l]
            sp_edge = SC[SC_VEDGE, vf] != 0
            two = sp_edge and SC[SC_VSPEE, vf] != 0
            for v in range(NV):
                SC[SC_SUB, v] = cur[v]
                SC[SC_SUBEE, v] = cur[v]
            for d in range(n):
                v = W[W_VAR, d]
                M = W[W_M, d]
                Me = W[W_ME, d]
                if W[W_SP, d] == 0:
                    x = Me if SC[SC_VEDGE, v] else M
                    SC[SC_SUB, v] = x
                    SC[SC_SUBEE, v] = x
                elif SC[SC_VIE, v] or SC[SC_VPOS, v] == POS_EDGE:
                    SC[SC_SUB, v] = Me if ne_l == 1 else M
                    SC[SC_SUBEE, v] = Me
                else:
                    SC[SC_SUB, v] = M
                    SC[SC_SUBEE, v] = M
            for r in (SC_SUB, SC_SUBEE):
                SC[r, V_YP] = SC[r, V_Y] - SC[r, V_R] + 1
                SC[r, V_XP] = SC[r, V_X] - SC[r, V_S] + 1
            if two:
                i = vec_find(l + 1, SC[SC_SUBEE], not full, vkeys, vcount, hslot, vslot)
                if i < 0:
                    info[2] = E_UNSUPPORTED
                    return 0, 0.0, 0
                if full:
                    compute = max(compute, np.int64(vvals[l + 1, i, 0]))
                    act += vvals[l + 1, i, 1]
                if ne_l - 1 > 0:
                    i = vec_find(l + 1, SC[SC_SUB], not full, vkeys, vcount, hslot, vslot)
                    if i < 0:
                        info[2] = E_UNSUPPORTED
                        return 0, 0.0, 0
                    if full:
                        compute = max(compute, np.int64(vvals[l + 1, i, 0]))
                        act += vvals[l + 1, i, 1] * (ne_l - 1)
            else:
                i = vec_find(l + 1, SC[SC_SUB], not full, vkeys, vcount, hslot, vslot)
                if i < 0:
                    info[2] = E_UNSUPPORTED
                    return 0, 0.0, 0
                if full:
                    compute = np.int64(vvals[l + 1, i, 0])
                    act = vvals[l + 1, i, 1] * (ne_l if sp_edge else ns)
        if not full:
            continue
        if act == 0.0:
            act = float(ne_l if SC[SC_VEDGE, W[W_VAR, fsp_l]] else ns)
        ingress = SC[si, 0] + SC[si, 1]
        egress = se
        in_d = hops_lat + ceil_div(ingress, noc_bw) - 1
        out_d = hops_lat + ceil_div(egress, noc_bw) - 1
        if chg == -1:
            delay = compute + in_d
        else:
            delay = max(in_d, max(compute, out_d))
        if top:
            out_off = tdiv(SC[l2_req, 2], offchip_bw)
            in_off = tdiv(SC[l2_req, 0] + SC[l2_req, 1], offchip_bw)
            delay = max(tdiv(in_off, 2), max(delay, tdiv(out_off, 2)))
            if compute == 0:
                info[2] = E_ZERO_COMPUTE
                return 0, 0.0, 0
            off = max(off, max(tdiv(SC[l2_req, 2], compute),
                               tdiv(SC[l2_req, 0] + SC[l2_req, 1], compute)))
            off = tdiv(off, 2)
        runtime += occ * delay
        macs += occ * pm
        active += occ * act
        sum_occ += occ
        cd = max(compute, 1)
        big = max(ingress, egress)
        peak_bw = max(peak_bw, tdiv(big, cd))
        avg_bw_sum += tdiv(occ * big, cd)
        if top:
            dmin0, dmax0, dsum0 = min(dmin0, in_d), max(dmax0, in_d), dsum0 + occ * in_d
            dmin1, dmax1, dsum1 = min(dmin1, out_d), max(dmax1, out_d), dsum1 + occ * out_d
            dmin2, dmax2, dsum2 = min(dmin2, cd), max(dmax2, cd), dsum2 + occ * cd
            arith = pm / ingress if ingress != 0 else np.inf
    avg_active = active / sum_occ if sum_occ > 0 else 0.0
    l1_total = SC[l1_req, 0] + SC[l1_req, 1] + SC[l1_req, 2]
    if top and full:
        single = nlev == 1 or sum_occ == 0
        if single:
            l1_report = l1_total  # no inner analysis exists (6.1)
        else:
            l1_report = np.int64(vvals[nlev - 1, 0, 2])  # the first innermost analysis
        out[O_RUNTIME] = runtime
        out[O_MACS] = macs
        out[O_L1_REQ] = l1_report
        out[O_L2_REQ] = SC[l2_req, 0] + SC[l2_req, 1] + SC[l2_req, 2]
        out[O_PEAK_BW] = peak_bw
        out[O_AVG_BW] = avg_bw_sum / sum_occ if sum_occ > 0 else 0.0
        out[O_OFFCHIP_BW] = off
        out[O_AVG_PES] = avg_active
        l2_terms = SC[l2_rd, 0] + SC[l2_wr, 0] + SC[l2_rd, 1] + SC[l2_wr, 1] + SC[l2_wr, 2]
        l1_terms = 0
        if single:
            for t in range(3):
                l1_terms += SC[l1_rd, t] + SC[l1_wr, t]
        out[O_ENERGY] = MAC_ENERGY_NJ * (L2_ACCESS * l2_terms + L1_ACCESS * l1_terms)
        out[O_ARITH_INT] = arith
        for t in range(3):
            out[O_IN_L1R + 4 * t] = SC[l1_rd, t]
            out[O_IN_L1R + 4 * t + 1] = SC[l1_wr, t]
            out[O_IN_L1R + 4 * t + 2] = SC[l2_rd, t]
            out[O_IN_L1R + 4 * t + 3] = SC[l2_wr, t]
            out[O_L1_IN + t] = SC[l1_req, t]
            out[O_L2_IN + t] = SC[l2_req, t]
        if sum_occ > 0:
            out[O_IN_DMIN], out[O_IN_DMAX], out[O_IN_DAVG] = dmin0, dmax0, dsum0 // sum_occ
            out[O_OUT_DMIN], out[O_OUT_DMAX], out[O_OUT_DAVG] = dmin1, dmax1, dsum1 // sum_occ
            out[O_CD_MIN], out[O_CD_MAX], out[O_CD_AVG] = dmin2, dmax2, dsum2 // sum_occ
    return runtime, avg_active, l1_total


_local = threading.local()


def _workspace() -> list[np.ndarray]:
    """The kernel's scratch arrays, allocated once per thread and reused across calls (the
    per-mapping state is reset inside the kernel)."""
    ws = getattr(_local, "ws", None)
    if ws is None:
        ws = _local.ws = _new_workspace()
    return ws


def _new_workspace() -> list[np.ndarray]:
    return [np.zeros(MAXL, np.int64),  # nd
            np.zeros((MAXL, MAXD), np.int64),  # dvar
            np.zeros((MAXL, MAXD), np.int64),  # dsp
            np.zeros((MAXL, MAXD), np.int64),  # dsz
            np.zeros((MAXL, MAXD), np.int64),  # dofs
            np.zeros((MAXL, NV), np.int64),  # sdim
            np.zeros(MAXL, np.int64),  # nsub
            np.zeros(MAXL, np.int64),  # ne
            np.zeros(MAXL, np.int64),  # fsp
            np.zeros((4, MAXL, NV), np.int64),  # tables M, Me, Uq, Uqe
            np.zeros((2, MAXL, NV), np.int64),  # first / last directive per variable
            np.zeros(3, np.int64),  # info
            np.zeros((MAXL, VEC_CAP, NV), np.int64),  # vkeys
            np.zeros((MAXL, VEC_CAP, 3), np.float64),  # vvals
            np.zeros(MAXL, np.int64),  # vcount
            np.full((MAXL, HASH_CAP), -1, np.int64),  # hslot
            np.zeros((MAXL, VEC_CAP), np.int64),  # vslot
            np.zeros((MAXL, W_ROWS, W_COLS), np.int64),  # W3
            np.zeros((SC_ROWS, SC_COLS), np.int64),  # SC
            np.zeros((5, MAXD), np.int64)]  # bscr


def evaluate_packed(ltype, ldims, stride_y, stride_x, hw, nlev, cluster, nd_raw, dvar_raw,
                    dsp_raw, dsz_raw, dofs_raw, out, err):
    """Evaluate ``B`` packed mappings of one layer on one hardware.

    ``ldims``: layer dims indexed by ``V_*`` (Y/X input sizes, YP/XP output sizes).
    ``hw``: [num_pes, noc_bw, offchip_bw, noc_hops * noc_hop_latency, num_simd_lanes].
    Fills ``out[b, :]`` (``O_*`` columns) and ``err[b]`` (``E_*`` codes).

    The kernels are compiled without numba's reference-counted runtime (``_nrt=False``): all
    memory is allocated here, so the hot loops do no atomic reference counting.
    """
    tens = layer_tensors(ltype)
    cpl = coupling(tens)
    outent = np.arange(NV, dtype=np.int64)
    if ltype != T_GEMM:
        outent[V_Y] = V_YP
        outent[V_X] = V_XP
    hwi = np.array([hw[3], hw[1], hw[2], hw[4]], np.int64)
    ws = _workspace()
    evaluate_kernel(ltype, ldims, stride_y, stride_x, hw, nlev, cluster, nd_raw, dvar_raw,
                    dsp_raw, dsz_raw, dofs_raw, out, err, tens, cpl, outent, hwi, *ws)


@njit(cache=True, _nrt=False, error_model="numpy")
def evaluate_kernel(ltype, ldims, stride_y, stride_x, hw, nlev, cluster, nd_raw, dvar_raw,
                    dsp_raw, dsz_raw, dofs_raw, out, err, tens, cpl, outent, hwi, nd, dvar, dsp,
                    dsz, dofs, sdim, nsub, ne, fsp, tabs, fl, info, vkeys, vvals, vcount, hslot,
                    vslot, W3, SC, bscr):
    """The loop of :func:`evaluate_packed` over the batch (workspace passed in)."""
    B = nlev.shape[0]
    tM, tMe, tUq, tUqe = tabs[0], tabs[1], tabs[2], tabs[3]
    firstdir, lastdir = fl[0], fl[1]
    for b in range(B):
        L = nlev[b]
        e = build_levels(ltype, ldims, stride_y, stride_x, hw[0], L, cluster[b], nd_raw[b],
                         dvar_raw[b], dsp_raw[b], dsz_raw[b], dofs_raw[b], nd, dvar, dsp, dsz,
                         dofs, sdim, nsub, cpl, bscr)
        if e != E_OK:
            err[b] = e
            continue
        for l in range(L):
            for v in range(NV):
                firstdir[l, v] = -1
                lastdir[l, v] = -1
                tM[l, v] = 0
                tMe[l, v] = 0
                tUq[l, v] = 0
                tUqe[l, v] = 0
            for d in range(nd[l]):
                v = dvar[l, d]
                if firstdir[l, v] < 0:
                    firstdir[l, v] = d
                lastdir[l, v] = d
            build_tables(ltype, l, nd, dvar, dsp, dsz, dofs, sdim, nsub, tM, tMe, tUq, tUqe, ne,
                         fsp)
            fill_level_array(l, W3, nd, dvar, dsp, dsz, dofs, nsub, ne, fsp, tM, tMe, tUq, tUqe,
                             firstdir, lastdir, tens, cpl, outent)
            # Forget the previous mapping's dim vectors.
            for i in range(vcount[l]):
                hslot[l, vslot[l, i]] = -1
            vcount[l] = 0
        info[2] = E_OK
        vec_find(0, sdim[0], True, vkeys, vcount, hslot, vslot)
        # Top-down: list the sub-cluster dim vectors each level needs.
        for l in range(L - 1):
            i = 0
            while i < vcount[l] and info[2] == E_OK:
                analyze_level(MODE_COLLECT, l, vkeys[l, i], L, W3, tens, outent, hwi, out[b],
                              info, vkeys, vvals, vcount, hslot, vslot, SC, False)
                i += 1
        # Bottom-up: analyze each vector once; the top level fills out[b].
        for l in range(L - 1, -1, -1):
            for i in range(vcount[l]):
                if info[2] != E_OK:
                    break
                rt, aa, l1 = analyze_level(MODE_FULL, l, vkeys[l, i], L, W3, tens, outent, hwi,
                                           out[b], info, vkeys, vvals, vcount, hslot, vslot, SC,
                                           i == 0)
                vvals[l, i, 0] = rt
                vvals[l, i, 1] = aa
                vvals[l, i, 2] = l1
        err[b] = info[2]
