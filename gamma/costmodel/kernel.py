"""The MAESTRO analytical model as a compiled kernel over a batch of packed mappings.

This is a from-scratch implementation of ``../shared/docs/maestro-model.md`` (section numbers
below refer to it), MAESTRO commit 4eb08d1 semantics, quirks included. It is written in the
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

import os

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


@njit(cache=True)
def tdiv(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@njit(cache=True)
def ceil_div(a: int, b: int) -> int:
    """C++ ``a/b + (a%b != 0)``."""
    q = tdiv(a, b)
    return q + (1 if a - q * b != 0 else 0)


@njit(cache=True)
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


@njit(cache=True)
def coupling(tens: np.ndarray) -> np.ndarray:
    """cpl[t, v] = 1 if variable v is coupled to tensor t."""
    cpl = np.zeros((3, NV), np.int64)
    for t in range(3):
        for k in range(tens[t, 4]):
            cpl[t, tens[t, k]] = 1
    return cpl


# --------------------------------------------------------------------------------------------
# Section 2: building the cluster hierarchy for one mapping.
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def build_levels(ltype, ldims, stride_y, stride_x, num_pes, nlev, cluster, nd_raw, dvar_raw,
                 dsp_raw, dsz_raw, dofs_raw, nd, dvar, dsp, dsz, dofs, sdim, nsub):
    """Fill the per-level directive lists (conversion, inheritance, unrolling, stride) and the
    static dims ``sdim[l, v]`` and sub-cluster counts ``nsub[l]``. Returns an error code."""
    tens = layer_tensors(ltype)
    cpl = coupling(tens)
    # Unroll-missing set: input and weight dims, alphabetical (C, K, M, N, R, S, X, Y).
    alpha = np.array([V_C, V_K, V_M, V_N, V_R, V_S, V_X, V_Y], np.int64)
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
        own = np.zeros(NV, np.int64)
        k = 0
        tmp_var = np.empty(MAXD, np.int64)
        tmp_sp = np.empty(MAXD, np.int64)
        tmp_sz = np.empty(MAXD, np.int64)
        tmp_ofs = np.empty(MAXD, np.int64)
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
@njit(cache=True)
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
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def pe_ingress(t, first_pe, ee_pe, l, nd, dvar, dsp, cpl, tM, tMe, tUq, tUqe, ne_l, dpos,
               dedge, dunrolled, chg):
    """5.1 ``PEIngress`` of input/weight tensor t for the current case."""
    n = nd[l]
    prod = 1
    if chg == -1:
        for d in range(n):
            v = dvar[l, d]
            if cpl[t, v] == 0:
                continue
            if dsp[l, d] == 0:
                prod *= tMe[l, v] if dedge[d] else tM[l, v]
            elif dedge[d]:
                if ne_l == 1:
                    if first_pe or ee_pe:
                        prod *= tMe[l, v]
                else:
                    prod *= tMe[l, v] if ee_pe else tM[l, v]
            else:
                prod *= tM[l, v]
        return prod
    inited = False
    for d in range(chg + 1, n):
        if cpl[t, dvar[l, d]] == 1 and dpos[d] == POS_INIT and not dunrolled[d]:
            inited = True
            break
    touched = False
    for d in range(n):
        v = dvar[l, d]
        if cpl[t, v] == 0:
            continue
        if d == chg:
            touched = True
        me_or_m = tMe[l, v] if ee_pe else tM[l, v]
        if dsp[l, d] == 0:
            if dpos[d] == POS_INIT:
                prod *= tMe[l, v] if dedge[d] else tM[l, v]
            elif d == chg and not inited:
                prod *= max(tUq[l, v], 1)
            else:
                prod *= tM[l, v]
        else:
            if dpos[d] == POS_INIT:
                if first_pe or d <= chg:
                    prod *= me_or_m
                else:
                    prod *= tUqe[l, v] if ee_pe else tUq[l, v]
            else:
                if first_pe:
                    prod *= me_or_m
                elif (not inited) and d == chg:
                    prod *= tUqe[l, v] if ee_pe else tUq[l, v]
                else:
                    prod *= me_or_m
    if not touched:
        return 0
    return prod


@njit(cache=True)
def spatial_factor(v, ev, pos, initedge, first_pe, ee_pe, reuse_at_edge, psum_group, l,
                   ne_l, tM, tMe, tUq, tUqe):
    """5.3 ``SpatialFactor`` of a spatially mapped variable. ``ev`` is the table entry used
    (Y'/X' for output rows/cols), ``v`` the variable as written (for the Edge, ne == 1 row)."""
    if pos == POS_STEADY or (pos == POS_INIT and not (initedge and ee_pe)):
        if first_pe:
            return tM[l, ev]
        return tUq[l, ev] if tUq[l, ev] != 0 else 1
    if pos == POS_INIT:  # init edge-edge
        if psum_group or ne_l == 1 or not reuse_at_edge:
            return tMe[l, ev]
        return tUqe[l, ev]
    # Edge
    if ne_l == 1:
        if first_pe or ee_pe:
            return tMe[l, v]
        return 1
    if ee_pe:
        return tUqe[l, ev]
    if first_pe:
        return tM[l, ev]
    return tUq[l, ev] if tUq[l, ev] != 0 else 1


@njit(cache=True)
def pe_egress(psum_mode, first_pe, ee_pe, reuse_at_edge, l, nd, dvar, dsp, cpl, tens, outent,
              firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge, vinitedge):
    """5.3 ``PEEgress``: product of the psum group (psum_mode) and the output group."""
    prod = 1
    if psum_mode:
        for d in range(nd[l]):
            v = dvar[l, d]
            if cpl[2, v] == 1:
                continue
            if dsp[l, d] == 0:
                prod *= tMe[l, v] if vedge[v] else tM[l, v]
            else:
                prod *= spatial_factor(v, v, vpos[v], vinitedge[v], first_pe, ee_pe,
                                       reuse_at_edge, True, l, ne_l, tM, tMe, tUq, tUqe)
    for k in range(tens[2, 4]):
        v = tens[2, k]
        ev = outent[v]
        d = firstdir[l, v]
        if d < 0:
            continue
        if dsp[l, d] == 0:
            if vpos[v] == POS_INIT:
                prod *= tMe[l, ev] if vedge[v] else tM[l, ev]
            elif vpos[v] == POS_STEADY:
                prod *= tM[l, ev]
            else:
                prod *= tMe[l, ev]
        else:
            prod *= spatial_factor(v, ev, vpos[v], vinitedge[v], first_pe, ee_pe, reuse_at_edge,
                                   False, l, ne_l, tM, tMe, tUq, tUqe)
    return prod


# --------------------------------------------------------------------------------------------
# Sections 4 and 6: iteration cases, per-level accumulation, recursion.
# --------------------------------------------------------------------------------------------
CACHE = 64  # distinct sub-cluster dim vectors cached per level and mapping


@njit(cache=True)
def tensor_situation(t, l, tens, dsp, firstdir, vedge, vspee):
    """5.2: (spatially mapped, spatially edge, sp_ee) of tensor t in the current case."""
    mapped = False
    edge = False
    spee = False
    for k in range(tens[t, 4]):
        v = tens[t, k]
        d = firstdir[l, v]
        if d >= 0 and dsp[l, d] == 1:
            mapped = True
            if vedge[v]:
                edge = True
            spee = vspee[v]
    return mapped, edge, spee


@njit(cache=True)
def analyze_level(l, cur, nlev, nd, dvar, dsp, dsz, dofs, nsub, ne, fsp, tM, tMe, tUq, tUqe,
                  firstdir, lastdir, tens, cpl, outent, hwi, out, info, ckey, cval, ccount):
    """Analyze cluster level ``l`` with current dims ``cur`` (6.2). Returns (runtime cycles,
    average active sub-clusters). At the top level (l == 0) it also fills ``out``.
    ``info``: [first innermost L1 set, its value, error code]."""
    if l >= nlev:
        return np.int64(0), 0.0
    if l > 0:  # memoized on the current dims (section 9.3)
        for i in range(ccount[l]):
            hit = True
            for v in range(NV):
                if ckey[l, i, v] != cur[v]:
                    hit = False
                    break
            if hit:
                return np.int64(cval[l, i, 0]), cval[l, i, 1]
    n = nd[l]
    ns = nsub[l]
    ne_l = ne[l]
    innermost = l == nlev - 1
    top = l == 0
    hops_lat, noc_bw, offchip_bw, simd = hwi[0], hwi[1], hwi[2], hwi[3]
    # Section 4: states per directive from the current dims.
    nst = np.zeros(MAXD, np.int64)
    s_pos = np.zeros((MAXD, MAXST), np.int64)
    s_occ = np.zeros((MAXD, MAXST), np.int64)
    s_unr = np.zeros((MAXD, MAXST), np.bool_)
    s_ie = np.zeros((MAXD, MAXST), np.bool_)
    s_ee = np.zeros((MAXD, MAXST), np.bool_)
    for d in range(n):
        D = cur[dvar[l, d]]
        sz = dsz[l, d]
        ofs = dofs[l, d]
        if dsp[l, d] == 0:
            s_pos[d, 0], s_occ[d, 0], s_unr[d, 0], s_ie[d, 0] = POS_INIT, 1, D <= sz, D < sz
            k = 1
            s = tdiv(D - sz, ofs)
            if sz < D and s > 0:
                s_pos[d, k], s_occ[d, k] = POS_STEADY, s
                k += 1
            if not (D < sz) and s * ofs + sz < D:
                s_pos[d, k], s_occ[d, k] = POS_EDGE, 1
                k += 1
        else:
            cov = sz + ofs * (ns - 1)
            unr = D <= cov
            s_pos[d, 0], s_occ[d, 0], s_unr[d, 0], s_ie[d, 0] = POS_INIT, 1, unr, D < cov
            s_ee[d, 0] = D < cov
            k = 1
            s = tdiv(tdiv(D - sz, ofs) + 1, ns) - 1
            if cov < D and s > 0:
                s_pos[d, k], s_occ[d, k] = POS_STEADY, s
                k += 1
            if D >= cov and not unr and (s + 1) * ofs * ns + cov > D and s * ofs * ns + cov != D:
                rem = D - (s + 1) * ofs * ns
                a = 1 if rem < sz else tdiv(rem - sz, ofs) + 1
                s_pos[d, k], s_occ[d, k] = POS_EDGE, 1
                s_ee[d, k] = (a - 1) * ofs + sz < rem
                k += 1
        nst[d] = k
    fstride = np.ones(MAXD, np.int64)
    total = 1
    for d in range(n - 1, -1, -1):
        fstride[d] = total
        total *= nst[d]
    # Per-level accumulators (index 0 input, 1 weight, 2 output).
    l2_req = np.zeros(3, np.int64)
    l1_req = np.zeros(3, np.int64)
    l2_rd = np.zeros(3, np.int64)
    l2_wr = np.zeros(3, np.int64)
    l1_rd = np.zeros(3, np.int64)
    l1_wr = np.zeros(3, np.int64)
    runtime = 0
    macs = 0
    active = 0.0
    sum_occ = 0
    peak_bw = 0
    avg_bw_sum = 0
    off = 0
    buf_done = False
    arith = 0.0
    dmin = np.full(3, np.iinfo(np.int64).max, np.int64)
    dmax = np.full(3, np.iinfo(np.int64).min, np.int64)
    dsum = np.zeros(3, np.float64)
    vpos = np.zeros(NV, np.int64)
    vedge = np.zeros(NV, np.bool_)
    vie = np.zeros(NV, np.bool_)
    vunr = np.zeros(NV, np.bool_)
    vspee = np.zeros(NV, np.bool_)
    dpos = np.zeros(MAXD, np.int64)
    dedge = np.zeros(MAXD, np.bool_)
    dunr = np.zeros(MAXD, np.bool_)
    sub = np.zeros(NV, np.int64)
    sub_ee = np.zeros(NV, np.int64)
    si = np.zeros(2, np.int64)
    for c in range(total):
        occ = 1
        for d in range(n):
            k = ceil_div(c, fstride[d]) % nst[d]
            occ *= s_occ[d, k]
            v = dvar[l, d]
            if lastdir[l, v] == d:
                vpos[v] = s_pos[d, k]
                vie[v] = s_ie[d, k]
                vunr[v] = s_unr[d, k]
                vspee[v] = s_ee[d, k]
                vedge[v] = s_pos[d, k] == POS_EDGE or s_ie[d, k]
        chg = -1
        for d in range(n):
            v = dvar[l, d]
            dpos[d] = vpos[v]
            dedge[d] = vedge[v]
            dunr[d] = vunr[v]
            if vpos[v] != POS_INIT:
                chg = d
        # 5.2 spatial ingress of input and weight.
        for t in range(2):
            mapped, edge, spee = tensor_situation(t, l, tens, dsp, firstdir, vedge, vspee)
            if not mapped:
                r = pe_ingress(t, True, False, l, nd, dvar, dsp, cpl, tM, tMe, tUq, tUqe, ne_l,
                               dpos, dedge, dunr, chg)
            elif not edge:
                r = pe_ingress(t, True, False, l, nd, dvar, dsp, cpl, tM, tMe, tUq, tUqe, ne_l,
                               dpos, dedge, dunr, chg)
                r += (ns - 1) * pe_ingress(t, False, False, l, nd, dvar, dsp, cpl, tM, tMe, tUq,
                                           tUqe, ne_l, dpos, dedge, dunr, chg)
            else:
                ee = 1 if spee else 0
                r = pe_ingress(t, True, ne_l == 1 and spee, l, nd, dvar, dsp, cpl, tM, tMe, tUq,
                               tUqe, ne_l, dpos, dedge, dunr, chg)
                if ne_l > 1:
                    r += max(ne_l - 1 - ee, 0) * pe_ingress(t, False, False, l, nd, dvar, dsp,
                                                            cpl, tM, tMe, tUq, tUqe, ne_l, dpos,
                                                            dedge, dunr, chg)
                    r += ee * pe_ingress(t, False, True, l, nd, dvar, dsp, cpl, tM, tMe, tUq,
                                         tUqe, ne_l, dpos, dedge, dunr, chg)
            si[t] = r
        # 5.3 output side.
        omapped, oedge, ospee = tensor_situation(2, l, tens, dsp, firstdir, vedge, vspee)
        if not omapped:
            se = pe_egress(False, True, False, True, l, nd, dvar, dsp, cpl, tens, outent,
                           firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge, vie)
        elif not oedge:
            se = pe_egress(False, True, False, True, l, nd, dvar, dsp, cpl, tens, outent,
                           firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge, vie)
            se += (ns - 1) * pe_egress(False, False, False, True, l, nd, dvar, dsp, cpl, tens,
                                       outent, firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge,
                                       vie)
        else:
            ee = 1 if ospee else 0
            se = pe_egress(False, True, ne_l == 1 and ospee, True, l, nd, dvar, dsp, cpl, tens,
                           outent, firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge, vie)
            if ne_l > 1:
                se += max(ne_l - 1 - ee, 0) * pe_egress(False, False, False, True, l, nd, dvar,
                                                        dsp, cpl, tens, outent, firstdir, tM,
                                                        tMe, tUq, tUqe, ne_l, vpos, vedge, vie)
                se += ee * pe_egress(False, False, True, True, l, nd, dvar, dsp, cpl, tens,
                                     outent, firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge,
                                     vie)
        psums = pe_egress(True, True, omapped and oedge and ne_l == 1 and ospee, True, l, nd,
                          dvar, dsp, cpl, tens, outent, firstdir, tM, tMe, tUq, tUqe, ne_l,
                          vpos, vedge, vie)
        pmapped, pedge, pspee = omapped, oedge, ospee
        for d in range(n):
            if dsp[l, d] == 1:
                v = dvar[l, d]
                pmapped = True
                if vedge[v]:
                    pedge = True
                pspee = vspee[v]
        base = pe_egress(True, True, False, True, l, nd, dvar, dsp, cpl, tens, outent, firstdir,
                         tM, tMe, tUq, tUqe, ne_l, vpos, vedge, vie)
        if not pedge:
            pm = ns * base
        else:
            ee = 1 if pspee else 0
            pm = pe_egress(True, True, ne_l == 1 and pspee, True, l, nd, dvar, dsp, cpl, tens,
                           outent, firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge, vie)
            if ne_l > 1:
                pm += max(ne_l - 1 - ee, 0) * base
                pm += ee * pe_egress(True, False, True, False, l, nd, dvar, dsp, cpl, tens,
                                     outent, firstdir, tM, tMe, tUq, tUqe, ne_l, vpos, vedge,
                                     vie)
        # 6.1 buffer requirements, repeated until a case is processed.
        if not buf_done:
            for t in range(3):
                mv = 1
                for d in range(n):
                    if cpl[t, dvar[l, d]] == 1:
                        mv *= tM[l, dvar[l, d]]
                vol = 1
                for k in range(tens[t, 4]):
                    v = tens[t, k]
                    if t == 2:
                        vol *= cur[outent[v]]
                    else:
                        vol *= cur[v]
                if t < 2:
                    l2_req[t] += 2 * si[t]
                    l1_req[t] += 2 * mv
                    l2_wr[t] = vol
                else:
                    l2_req[2] = 2 * se
                    l1_req[2] = 2 * mv
                    l2_rd[2] = vol
        # 6.2 accumulation.
        l2_wr[2] += occ * se
        l1_wr[2] += occ * pm
        l1_rd[2] += occ * pm
        if psums <= 0:
            continue
        buf_done = True
        for t in range(2):
            l2_rd[t] += occ * si[t]
            l1_wr[t] = l2_rd[t]
            l1_rd[t] += occ * pm
        ingress = si[0] + si[1]
        egress = se
        act = 0.0
        if innermost:
            compute = ceil_div(psums, simd)
        else:
            f = fsp[l]
            vf = dvar[l, f]
            sp_edge = vedge[vf]
            two = sp_edge and vspee[vf]
            for v in range(NV):
                sub[v] = cur[v]
                sub_ee[v] = cur[v]
            for d in range(n):
                v = dvar[l, d]
                if dsp[l, d] == 0:
                    x = tMe[l, v] if vedge[v] else tM[l, v]
                    sub[v] = x
                    sub_ee[v] = x
                elif vie[v] or vpos[v] == POS_EDGE:
                    sub[v] = tMe[l, v] if ne_l == 1 else tM[l, v]
                    sub_ee[v] = tMe[l, v]
                else:
                    sub[v] = tM[l, v]
                    sub_ee[v] = tM[l, v]
            sub[V_YP] = sub[V_Y] - sub[V_R] + 1
            sub[V_XP] = sub[V_X] - sub[V_S] + 1
            sub_ee[V_YP] = sub_ee[V_Y] - sub_ee[V_R] + 1
            sub_ee[V_XP] = sub_ee[V_X] - sub_ee[V_S] + 1
            compute = 0
            if two:
                rt, aa = analyze_level(l + 1, sub_ee, nlev, nd, dvar, dsp, dsz, dofs, nsub, ne,
                                        fsp, tM, tMe, tUq, tUqe, firstdir, lastdir, tens, cpl,
                                        outent, hwi, out, info, ckey, cval, ccount)
                compute = max(compute, rt)
                act += aa
                if ne_l - 1 > 0:
                    rt, aa = analyze_level(l + 1, sub, nlev, nd, dvar, dsp, dsz, dofs, nsub, ne,
                                            fsp, tM, tMe, tUq, tUqe, firstdir, lastdir, tens,
                                            cpl, outent, hwi, out, info, ckey, cval, ccount)
                    compute = max(compute, rt)
                    act += aa * (ne_l - 1)
            else:
                rt, aa = analyze_level(l + 1, sub, nlev, nd, dvar, dsp, dsz, dofs, nsub, ne, fsp,
                                        tM, tMe, tUq, tUqe, firstdir, lastdir, tens, cpl, outent,
                                        hwi, out, info, ckey, cval, ccount)
                compute = rt
                act = aa * (ne_l if sp_edge else ns)
            if info[2] != E_OK:
                return np.int64(0), 0.0
        if act == 0.0:
            f = fsp[l]
            act = float(ne_l if vedge[dvar[l, f]] else ns)
        in_d = hops_lat + ceil_div(ingress, noc_bw) - 1
        out_d = hops_lat + ceil_div(egress, noc_bw) - 1
        if chg == -1:
            delay = compute + in_d
        else:
            delay = max(in_d, max(compute, out_d))
        if top:
            out_off = tdiv(l2_req[2], offchip_bw)
            in_off = tdiv(l2_req[0] + l2_req[1], offchip_bw)
            delay = max(tdiv(in_off, 2), max(delay, tdiv(out_off, 2)))
            if compute == 0:
                info[2] = E_ZERO_COMPUTE
                return np.int64(0), 0.0
            off = max(off, max(tdiv(l2_req[2], compute), tdiv(l2_req[0] + l2_req[1], compute)))
            off = tdiv(off, 2)
        runtime += occ * delay
        macs += occ * pm
        active += occ * act
        sum_occ += occ
        cd = max(compute, 1)
        big = max(ingress, egress)
        peak_bw = max(peak_bw, tdiv(big, cd))
        avg_bw_sum += tdiv(occ * big, cd)
        dl = (in_d, out_d, cd)
        for i in range(3):
            dmin[i] = min(dmin[i], dl[i])
            dmax[i] = max(dmax[i], dl[i])
            dsum[i] += occ * dl[i]
        arith = pm / ingress if ingress != 0 else np.inf
    avg_active = active / sum_occ if sum_occ > 0 else 0.0
    if innermost and info[0] == 0:
        info[0] = 1
        info[1] = l1_req[0] + l1_req[1] + l1_req[2]
    if top:
        single = nlev == 1 or sum_occ == 0
        if nlev > 1 and sum_occ == 0:
            info[1] = l1_req[0] + l1_req[1] + l1_req[2]
        out[O_RUNTIME] = runtime
        out[O_MACS] = macs
        out[O_L1_REQ] = info[1]
        out[O_L2_REQ] = l2_req[0] + l2_req[1] + l2_req[2]
        out[O_PEAK_BW] = peak_bw
        out[O_AVG_BW] = avg_bw_sum / sum_occ if sum_occ > 0 else 0.0
        out[O_OFFCHIP_BW] = off
        out[O_AVG_PES] = avg_active
        l2_terms = l2_rd[0] + l2_wr[0] + l2_rd[1] + l2_wr[1] + l2_wr[2]
        l1_terms = 0
        if single:
            for t in range(3):
                l1_terms += l1_rd[t] + l1_wr[t]
        out[O_ENERGY] = MAC_ENERGY_NJ * (L2_ACCESS * l2_terms + L1_ACCESS * l1_terms)
        out[O_ARITH_INT] = arith
        for t in range(3):
            out[O_IN_L1R + 4 * t] = l1_rd[t]
            out[O_IN_L1R + 4 * t + 1] = l1_wr[t]
            out[O_IN_L1R + 4 * t + 2] = l2_rd[t]
            out[O_IN_L1R + 4 * t + 3] = l2_wr[t]
            out[O_L1_IN + t] = l1_req[t]
            out[O_L2_IN + t] = l2_req[t]
        for i in range(3):
            out[O_IN_DMIN + 3 * i] = dmin[i] if sum_occ > 0 else 0
            out[O_IN_DMIN + 3 * i + 1] = dmax[i] if sum_occ > 0 else 0
            out[O_IN_DMIN + 3 * i + 2] = dsum[i] // sum_occ if sum_occ > 0 else 0.0
    if l > 0 and ccount[l] < CACHE:
        i = ccount[l]
        for v in range(NV):
            ckey[l, i, v] = cur[v]
        cval[l, i, 0] = runtime
        cval[l, i, 1] = avg_active
        ccount[l] = i + 1
    return np.int64(runtime), avg_active


@njit(cache=True)
def evaluate_packed(ltype, ldims, stride_y, stride_x, hw, nlev, cluster, nd_raw, dvar_raw,
                    dsp_raw, dsz_raw, dofs_raw, out, err):
    """Evaluate ``B`` packed mappings of one layer on one hardware.

    ``ldims``: layer dims indexed by ``V_*`` (Y/X input sizes, YP/XP output sizes).
    ``hw``: [num_pes, noc_bw, offchip_bw, noc_hops * noc_hop_latency, num_simd_lanes].
    Fills ``out[b, :]`` (``O_*`` columns) and ``err[b]`` (``E_*`` codes).
    """
    B = nlev.shape[0]
    tens = layer_tensors(ltype)
    cpl = coupling(tens)
    outent = np.arange(NV)
    if ltype != T_GEMM:
        outent[V_Y] = V_YP
        outent[V_X] = V_XP
    hwi = np.array([hw[3], hw[1], hw[2], hw[4]], np.int64)
    nd = np.zeros(MAXL, np.int64)
    dvar = np.zeros((MAXL, MAXD), np.int64)
    dsp = np.zeros((MAXL, MAXD), np.int64)
    dsz = np.zeros((MAXL, MAXD), np.int64)
    dofs = np.zeros((MAXL, MAXD), np.int64)
    sdim = np.zeros((MAXL, NV), np.int64)
    nsub = np.zeros(MAXL, np.int64)
    ne = np.zeros(MAXL, np.int64)
    fsp = np.zeros(MAXL, np.int64)
    tM = np.zeros((MAXL, NV), np.int64)
    tMe = np.zeros((MAXL, NV), np.int64)
    tUq = np.zeros((MAXL, NV), np.int64)
    tUqe = np.zeros((MAXL, NV), np.int64)
    firstdir = np.zeros((MAXL, NV), np.int64)
    lastdir = np.zeros((MAXL, NV), np.int64)
    info = np.zeros(3, np.int64)
    ckey = np.zeros((MAXL, CACHE, NV), np.int64)
    cval = np.zeros((MAXL, CACHE, 2), np.float64)
    ccount = np.zeros(MAXL, np.int64)
    cur = np.zeros(NV, np.int64)
    for b in range(B):
        L = nlev[b]
        e = build_levels(ltype, ldims, stride_y, stride_x, hw[0], L, cluster[b], nd_raw[b],
                         dvar_raw[b], dsp_raw[b], dsz_raw[b], dofs_raw[b], nd, dvar, dsp, dsz,
                         dofs, sdim, nsub)
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
            ccount[l] = 0
        info[0] = 0
        info[1] = 0
        info[2] = E_OK
        for v in range(NV):
            cur[v] = sdim[0, v]
        analyze_level(0, cur, L, nd, dvar, dsp, dsz, dofs, nsub, ne, fsp, tM, tMe, tUq, tUqe,
                      firstdir, lastdir, tens, cpl, outent, hwi, out[b], info, ckey, cval, ccount)
        err[b] = info[2]
