#!/usr/bin/env python3
"""Scores nucleisam's CoNSeP-style predictions with the reference implementations' own code and
prints their numbers beside `nucleisam eval`'s (docs/metrics.md, "Checked against the reference code").

The references are not part of nucleisam: check them out yourself (e.g. `git archive` of
vqdang/hover_net, TissueImageAnalytics/CoNIC and TissueImageAnalytics/PanNuke-metrics) and pass
their folders. Needs numpy, scipy, pandas, matplotlib and OpenCV for Python (Debian packages);
docopt, tqdm and scikit-learn, which the references import but these checks do not use, are
stubbed.

  bench/reference_metrics.py PRED GT EVAL_DIR [--hovernet DIR] [--conic DIR] [--pannuke DIR]
                             [--classes 4] [--nucleisam build/nucleisam]

PRED: `segment --formats labels,csv` output (<name>_labels.tif + <name>_nuclei.csv); GT: a
consep256-style split (inst_png/, instances.csv); EVAL_DIR: `nucleisam eval --out` of PRED
against GT (per_image.csv, summary.json). For PanNuke's per-tissue averages each source tile of
GT is made a "tissue" (run.py knows 19 names) and `nucleisam eval --groups` is run the same way.
"""
import argparse
import contextlib
import csv
import glob
import io
import json
import os
import subprocess
import sys
import tempfile
import types

import cv2
import numpy as np
import scipy.io as sio


def stub(name, **attrs):
    sys.modules.setdefault(name, types.SimpleNamespace(**attrs))


REFERENCE_PATHS = []


def use_reference(folder):
    """Imports come from `folder` only; the references share module names (metrics, misc, utils),
    and a regular package of one would shadow the other's namespace package."""
    for name in list(sys.modules):
        if name.split('.')[0] in ('metrics', 'misc', 'utils', 'compute_stats', 'run'):
            del sys.modules[name]
    for path in REFERENCE_PATHS:
        sys.path.remove(path)
    REFERENCE_PATHS[:] = [folder]
    sys.path.insert(0, folder)


def load_pairs(pred_dir, gt_dir):
    """(name, gt instances, gt classes by id, pred instances, pred classes by id) per image."""
    gt_types = {}
    with open(os.path.join(gt_dir, 'instances.csv')) as f:
        for r in csv.DictReader(f):
            gt_types[(r['tile'], int(r['inst_label']))] = int(r['type'])
    for path in sorted(glob.glob(os.path.join(pred_dir, '*_labels.tif'))):
        name = os.path.basename(path)[:-len('_labels.tif')]
        pred = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.int32)
        true = cv2.imread(os.path.join(gt_dir, 'inst_png', name + '.png'), cv2.IMREAD_UNCHANGED).astype(np.int32)
        with open(os.path.join(pred_dir, name + '_nuclei.csv')) as f:
            pred_cls = {int(r['id']): int(r['class']) for r in csv.DictReader(f)}
        true_cls = {int(i): gt_types[(name, int(i))] for i in np.unique(true)[1:]}
        yield name, true, true_cls, pred, pred_cls


def class_map(inst, cls):
    out = np.zeros_like(inst)
    for i, c in cls.items():
        out[inst == i] = c
    return out


def centroids(inst, cls):
    rows = []
    for i in np.unique(inst)[1:]:
        m = cv2.moments((inst == i).astype(np.uint8))
        rows.append((m['m10'] / m['m00'], m['m01'] / m['m00'], cls[int(i)]))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def hovernet(ref, pairs, eval_dir, classes):
    use_reference(ref)
    import matplotlib
    matplotlib.use('Agg')
    from metrics.stats_utils import get_dice_1, get_fast_aji, get_fast_aji_plus, get_fast_pq, remap_label
    import compute_stats
    with open(os.path.join(eval_dir, 'per_image.csv')) as f:
        ours = {r['image']: r for r in csv.DictReader(f)}
    worst = {}
    work = tempfile.mkdtemp()
    for side in ('true', 'pred'):
        os.makedirs(os.path.join(work, side))
    for name, true, true_cls, pred, pred_cls in pairs:
        ref_values = {'dice': get_dice_1(true, pred)}
        if true.max() > 0 and pred.max() > 0:
            t, p = remap_label(true), remap_label(pred)
            ref_values.update(aji=get_fast_aji(t, p), aji_plus=get_fast_aji_plus(t, p))
            ref_values.update(zip(('dq', 'sq', 'pq'), get_fast_pq(t, p)[0]))
        for k, v in ref_values.items():
            worst[k] = max(worst.get(k, 0.0), abs(float(ours[name][k]) - v))
        for side, inst, cls in (('true', true, true_cls), ('pred', pred, pred_cls)):
            c = centroids(inst, cls)
            sio.savemat(os.path.join(work, side, name + '.mat'),
                        {'inst_centroid': c[:, :2], 'inst_type': c[:, 2:].astype(np.int32)})
    print('HoVer-Net stats_utils, largest |nucleisam - reference| per image:',
          ', '.join('%s %.1e' % kv for kv in sorted(worst.items())))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        compute_stats.run_nuclei_type_stat(os.path.join(work, 'pred') + '/', os.path.join(work, 'true') + '/',
                                           type_uid_list=list(range(1, classes + 1)))
    print('HoVer-Net run_nuclei_type_stat [F_d, type accuracy, F_c per class]:', out.getvalue().strip())
    with open(os.path.join(eval_dir, 'summary.json')) as f:
        s = json.load(f)
    print('nucleisam eval:                            [%.5f %.5f %s]' % (
        s['binary']['centroid_detection']['f1_d'], s['classes']['type_accuracy'],
        ' '.join('%.5f' % s['classes']['per_class'][n]['f1_type'] for n in s['classes']['names'])))


def conic(ref, pairs, eval_dir, classes):
    use_reference(ref)
    stub('sklearn', metrics=None)
    stub('sklearn.metrics', r2_score=None)
    from metrics.stats_utils import get_pq, get_multi_pq_info
    pqs, info = [], []
    for _, true, true_cls, pred, pred_cls in pairs:
        pqs.append(get_pq(true, pred)[0][2])
        stats = get_multi_pq_info(np.stack([true, class_map(true, true_cls)], -1),
                                  np.stack([pred, class_map(pred, pred_cls)], -1), nr_classes=classes)
        info.append([x[:4] for x in stats])
    t = np.array(info, dtype=float).sum(0)
    mpq = np.mean([(c[0] / (c[0] + 0.5 * c[1] + 0.5 * c[2] + 1e-6)) * (c[3] / (c[0] + 1e-6)) for c in t])
    with open(os.path.join(eval_dir, 'summary.json')) as f:
        s = json.load(f)
    print('CoNIC stats_utils: binary PQ %.6f  mPQ+ %.6f' % (np.mean(pqs), mpq))
    print('nucleisam eval:    binary PQ %.6f  mPQ+ %.6f' % (s['binary']['pq']['mean'], s['classes']['mpq_plus']))


def pannuke(ref, pairs, pred_dir, gt_dir, nucleisam):
    use_reference(ref)
    stub('docopt', docopt=None)
    import run
    pairs = list(pairs)
    names = [p[0] for p in pairs]
    tiles = sorted({n.rsplit('_', 1)[0] for n in names})
    if len(tiles) > len(run.tissue_types):
        sys.exit('pannuke: more tiles than the reference has tissue names')
    tissue_of = {t: run.tissue_types[i] for i, t in enumerate(tiles)}  # each source tile a "tissue"
    h, w = pairs[0][1].shape
    true = np.zeros((len(pairs), h, w, 6), np.int32)
    pred = np.zeros_like(true)
    for k, (_, t, t_cls, p, p_cls) in enumerate(pairs):
        for arr, inst, cls in ((true, t, t_cls), (pred, p, p_cls)):
            for i, c in cls.items():
                arr[k][..., c - 1][inst == i] = i
    work = tempfile.mkdtemp()
    for side, arr in (('true', true), ('pred', pred)):
        os.makedirs(os.path.join(work, side))
        np.save(os.path.join(work, side, 'masks.npy'), arr)
    np.save(os.path.join(work, 'true', 'types.npy'), np.array([tissue_of[n.rsplit('_', 1)[0]] for n in names]))
    groups = os.path.join(work, 'groups.csv')
    with open(groups, 'w') as f:
        f.write('image,tissue\n' + ''.join('%s,%s\n' % (n, tissue_of[n.rsplit('_', 1)[0]]) for n in names))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), np.errstate(all='ignore'):
        import warnings
        warnings.simplefilter('ignore')
        run.main({'--true_path': work + '/true', '--pred_path': work + '/pred', '--save_path': work + '/out'})
    print('PanNuke run.py:', ' '.join(line for line in out.getvalue().splitlines() if line.startswith('Average')))
    subprocess.run([nucleisam, '--quiet', 'eval', '--pred', pred_dir, '--gt', gt_dir, '--groups', groups,
                    '--out', os.path.join(work, 'eval')], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(work, 'eval', 'summary.json')) as f:
        s = json.load(f)
    print('nucleisam eval --groups: mPQ %.6f bPQ %.6f' % (s['classes']['pannuke_mpq']['mean'],
                                                        s['binary']['pannuke_bpq']['mean']))


def main():
    a = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    a.add_argument('pred')
    a.add_argument('gt')
    a.add_argument('eval_dir')
    a.add_argument('--hovernet')
    a.add_argument('--conic')
    a.add_argument('--pannuke')
    a.add_argument('--classes', type=int, default=4)
    a.add_argument('--nucleisam', default='build/nucleisam')
    args = a.parse_args()
    if args.hovernet:
        hovernet(args.hovernet, load_pairs(args.pred, args.gt), args.eval_dir, args.classes)
    if args.conic:
        conic(args.conic, load_pairs(args.pred, args.gt), args.eval_dir, args.classes)
    if args.pannuke:
        pannuke(args.pannuke, load_pairs(args.pred, args.gt), args.pred, args.gt, args.nucleisam)


if __name__ == '__main__':
    main()
