#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ (standard library only; docs/fuzzing.md).

Small valid files of each format, cut from ../shared where it has them (MoNuSeg Aperio XML, CoNSeP
.mat and CSV, a SAM fixture's pickle and .npy, the bundled model's card) or written here (PNG,
TIFF, .npy, .pth, .safetensors), plus hand-made edge cases: empty, one byte, truncated headers,
huge declared sizes, deep nesting. Run from the repository root: python3 fuzz/seeds.py [shared]
"""
import collections, glob, json, os, pickle, struct, sys, types, zipfile, zlib, io

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, '..', 'shared')
out = os.path.join(root, 'fuzz', 'corpus')


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 100_000, (target, name, len(data))
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def first(pattern):
    found = sorted(glob.glob(os.path.join(shared, pattern)))
    return found[0] if found else None


def common(target):
    put(target, 'empty', b'')
    put(target, 'one-byte', b'\x00')


# ---- .npy
def npy(kind, shape, payload, version=1, extra=''):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, %s}" % (
        kind, '(' + ''.join('%d, ' % s for s in shape) + ')' if len(shape) != 1 else '(%d,)' % shape[0], extra)
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(header) + 1) % 64) % 64
    header = header + ' ' * pad + '\n'
    if version == 1:
        return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() + payload
    return b'\x93NUMPY' + bytes([version, 0]) + struct.pack('<I', len(header)) + header.encode() + payload


common('npy')
put('npy', 'labels-u16', npy('<u2', (4, 5), struct.pack('<20H', *range(20))))
put('npy', 'float32-v2', npy('<f4', (2, 3), struct.pack('<6f', 0.5, 1, 2, -3, 1e30, float('nan')), version=2))
put('npy', 'bool-scalar', npy('|b1', (), b'\x01'))
put('npy', 'huge-shape', npy('<i8', (1 << 40, 1 << 40), b''))
put('npy', 'truncated-payload', npy('<i4', (8, 8), b'\x01\x00\x00\x00' * 3))
put('npy', 'truncated-header', npy('<i4', (2, 2), b'\x00' * 16)[:20])
put('npy', 'strings-u6', npy('<U6', (3,), ''.join(s.ljust(6, '\0') for s in ('Breast', 'Col\u00f3n', '')).encode('utf-32-le')))
fixture = first('fixtures/sam/*/box1_iou.npy')
if fixture:
    put('npy', 'sam-iou', open(fixture, 'rb').read())

# ---- images: PNG, TIFF written here, the demo JPEG
def png(width, height, colour, depth, rows, phys=None):
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    raw = b''.join(b'\x00' + r for r in rows)
    # phys: (x, y, unit) pixels per unit, the resolution read_image_mpp reads (unit 1: the metre)
    extra = chunk(b'pHYs', struct.pack('>IIB', *phys)) if phys else b''
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, depth, colour, 0, 0, 0)) +
            extra + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def tiff(width, height, spp, bits, fmt, pixels, photometric):
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, 1),
               (262, 3, 1, photometric), (273, 4, 1, 0), (277, 3, 1, spp), (278, 4, 1, height),
               (279, 4, 1, len(pixels)), (284, 3, 1, 1), (339, 3, 1, fmt)]
    if spp == 3:
        entries[2] = (258, 3, 1, bits)  # one value is enough for libtiff with equal samples
    offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = offset + ifd_size
    entries = [(t, ty, n, data_offset if t == 273 else v) for t, ty, n, v in entries]
    ifd = struct.pack('<H', len(entries))
    for t, ty, n, v in entries:
        ifd += struct.pack('<HHI', t, ty, n) + (struct.pack('<HH', v, 0) if ty == 3 else struct.pack('<I', v))
    ifd += struct.pack('<I', 0)
    return b'II*\x00' + struct.pack('<I', offset) + ifd + pixels


common('image')
rgb = [bytes((x * 16 + y) % 256 for x in range(8) for _ in range(3)) for y in range(8)]
put('image', 'rgb-8x8.png', png(8, 8, 2, 8, rgb))
put('image', 'rgb-8x8-0.5um.png', png(8, 8, 2, 8, rgb, (2000000, 2000000, 1)))
put('image', 'grey16-4x4.png', png(4, 4, 0, 16, [struct.pack('>4H', *(range(y * 4, y * 4 + 4))) for y in range(4)]))
put('image', 'labels-4x4.tif', tiff(4, 4, 1, 16, 1, struct.pack('<16H', *range(16)), 1))
put('image', 'labels-f32.tif', tiff(2, 2, 1, 32, 3, struct.pack('<4f', 1, 2, 1e30, float('nan')), 1))
put('image', 'rgb-4x4.tif', tiff(4, 4, 3, 8, 1, bytes(range(48)), 2))
put('image', 'huge-dims.png', png(0x7fffffff, 0x7fffffff, 2, 8, [b'\x00' * 3])[:64])
put('image', 'huge-dims.tif', tiff(0x7fffffff, 0x7fffffff, 1, 8, 1, b'\x00' * 16, 1))
put('image', 'truncated.png', png(8, 8, 2, 8, rgb)[:60])
jpeg = os.path.join(root, 'assets', 'demo', 'he_tile.jpg')
if os.path.exists(jpeg):
    data = open(jpeg, 'rb').read()
    put('image', 'he-tile.jpg', data)
    put('image', 'truncated.jpg', data[:3000])

# ---- Aperio XML: the first regions of a MoNuSeg annotation, hand-made edge cases
common('aperio_xml')
xml = first('data/monuseg/*/annotations_xml/*.xml')
if xml:
    text = open(xml, encoding='utf-8', errors='replace').read()
    cut = text.find('</Region>')
    for _ in range(2):
        cut = text.find('</Region>', cut + 1)
    head = text[:cut + len('</Region>')] + '\n</Regions>\n</Annotation>\n</Annotations>\n'
    put('aperio_xml', 'monuseg-3-regions.xml', head)
put('aperio_xml', 'square.xml', '<Annotations><Annotation><Regions><Region Id="1"><Vertices>'
    '<Vertex X="1" Y="1"/><Vertex X="5" Y="1"/><Vertex X="5" Y="5"/><Vertex X="1" Y="5"/>'
    '</Vertices></Region></Regions></Annotation></Annotations>')
put('aperio_xml', 'huge-coords.xml', '<Annotations><Annotation><Regions><Region Id="2147483647"><Vertices>'
    '<Vertex X="1e308" Y="-1e308"/><Vertex X="nan" Y="inf"/><Vertex X="-2147483649" Y="3"/>'
    '</Vertices></Region></Regions></Annotation></Annotations>')
put('aperio_xml', 'deep.xml', '<a>' * 5000 + '</a>' * 5000)

# ---- MATLAB .mat: a CoNSeP type map
common('mat')
mat = first('data/consep*/*/type_mat/*.mat')
if mat:
    data = open(mat, 'rb').read()
    put('mat', 'consep-type.mat', data)
    put('mat', 'truncated.mat', data[:200])
put('mat', 'header-only.mat', b'MATLAB 5.0 MAT-file, Platform: GLNXA64'.ljust(116, b' ') + b'\x00' * 8 +
    b'\x00\x01IM')
put('mat', 'huge-element.mat', b'MATLAB 5.0 MAT-file'.ljust(116, b' ') + b'\x00' * 8 + b'\x00\x01IM' +
    struct.pack('<II', 14, 0xfffffff0))

# ---- CSV
common('csv')
csv = first('data/consep*/*/instances.csv')
if csv:
    put('csv', 'consep-instances.csv', ''.join(open(csv).readlines()[:30]))
put('csv', 'quoted.csv', 'a,"b,c","d""e"\r\n1,2.5,-3\r"x\ny",1e308,9223372036854775808\n')
put('csv', 'unterminated.csv', 'a,"b\n1,2\n')
put('csv', 'numbers.csv', '1,-0,0x10,1e-400,nan,inf, 1,1 ,+5,--1\n')

# ---- GeoJSON
common('geojson')
square = [[[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]]]
put('geojson', 'feature-collection.geojson', json.dumps({'type': 'FeatureCollection', 'features': [
    {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': square}, 'properties': {}},
    {'type': 'Feature', 'geometry': {'type': 'MultiPolygon', 'coordinates': [square, square]}}]}))
put('geojson', 'geometry-collection.geojson', json.dumps({'type': 'GeometryCollection', 'geometries': [
    {'type': 'Polygon', 'coordinates': [[[1e300, -1e300], [1e308, 0], [0, 1e-300]]]}]}))
put('geojson', 'deep-arrays.geojson', '[' * 20000 + ']' * 20000)
put('geojson', 'deep-features.geojson', '{"type":"Feature","geometry":' * 3000 + '{}' + '}' * 3000)

# ---- model card ("key=value" lines, from a bundled model file's metadata)
common('model_card')
model = os.path.join(root, 'models', 'he-nuclei.safetensors')
card = None
if os.path.exists(model):
    with open(model, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
    card = header.get('__metadata__', {})
    put('model_card', 'he-nuclei', ''.join('%s=%s\n' % kv for kv in sorted(card.items())))
    bad = dict(card, **{'tile.size': '1e300', 'tile.overlap': 'nan', 'input.mpp': '-inf',
                        'heads.num_classes': '2.5'})
    put('model_card', 'bad-numbers', ''.join('%s=%s\n' % kv for kv in sorted(bad.items())))
    # A card of a model trained since cards record the stain range of their training images.
    ranged = dict(card, **{'input.stain_range': '0.74,3.31,0.63,2.11'})
    put('model_card', 'stain-range', ''.join('%s=%s\n' % kv for kv in sorted(ranged.items())))

# ---- safetensors and its header JSON
def safetensors(tensors, metadata=None):
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    payload = b''
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(payload), len(payload) + len(data)]}
        payload += data
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    return struct.pack('<Q', len(text)) + text + payload


common('safetensors')
small = {'a.weight': ('F32', [2, 3], struct.pack('<6f', *range(6))), 'b.bias': ('F16', [2], b'\x00\x3c\x00\x40'),
         'n': ('I64', [], struct.pack('<q', 7)), 'z': ('BF16', [0, 4], b'')}
st = safetensors(small, {'nucleisam.model': '1', 'name': 'fuzz'})
put('safetensors', 'small.safetensors', st)
put('safetensors', 'truncated.safetensors', st[:40])
put('safetensors', 'huge-header-length', struct.pack('<Q', 1 << 62) + b'{}')
put('safetensors', 'huge-shape.safetensors',
    safetensors({'x': ('F32', [1 << 31, 1 << 31, 1 << 31], b'')}))
put('safetensors', 'overlapping.safetensors', safetensors({'x': ('F32', [2], b'\x00' * 8)})[:-4])
if card:
    put('safetensors', 'model-card.safetensors', safetensors({'w': ('F16', [1], b'\x00\x3c')}, card))

common('weights_json')
put('weights_json', 'header.json', st[8:8 + struct.unpack('<Q', st[:8])[0]])
put('weights_json', 'deep.json', '[' * 100 + ']' * 100)
put('weights_json', 'escapes.json', '{"a\\u00e9\\ud83d\\ude00":"\\n\\t\\"","b":[-9223372036854775808,true,false,null]}')
put('weights_json', 'big-int.json', '{"x":99999999999999999999999}')

# ---- .pth: pickle of an OrderedDict of _rebuild_tensor_v2 calls, in a torch.save-like zip
torch_mod = types.ModuleType('torch')
utils_mod = types.ModuleType('torch._utils')


def _rebuild_tensor_v2(*args):
    pass


_rebuild_tensor_v2.__module__ = 'torch._utils'
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
storages = {}
for t in ('Float', 'Long', 'Half', 'BFloat16'):
    cls = type(t + 'Storage', (), {})
    cls.__module__ = 'torch'
    setattr(torch_mod, t + 'Storage', cls)
    storages[t] = cls
sys.modules['torch'] = torch_mod
sys.modules['torch._utils'] = utils_mod


class Storage:
    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel = kind, key, numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args)


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ('storage', storages[obj.kind], obj.key, 'cpu', obj.numel)
        return None


def state_pickle(state):
    b = io.BytesIO()
    Pickler(b, protocol=2).dump(state)
    return b.getvalue()


def pth(state, blobs, name='archive'):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(name + '/data.pkl', state_pickle(state))
        for key, data in blobs.items():
            z.writestr(name + '/data/' + key, data)
        z.writestr(name + '/version', '3\n')
    return b.getvalue()


s0 = Storage('Float', '0', 6)
s1 = Storage('Long', '1', 2)
state = collections.OrderedDict([('conv.weight', Tensor(s0, 0, [2, 3], [3, 1])),
                                 ('conv.t', Tensor(s0, 1, [3, 2], [1, 3])),
                                 ('steps', Tensor(s1, 0, [2], [1]))])
blobs = {'0': struct.pack('<6f', *range(6)), '1': struct.pack('<2q', 1, 2)}
small_pth = pth(state, blobs)
nested = {'model': state, 'epoch': 3, 'name': 'x', 'lr': 0.5, 'flags': [True, None]}
common('pth')
put('pth', 'small.pth', small_pth)
put('pth', 'nested.pth', pth(nested, blobs))
put('pth', 'truncated.pth', small_pth[:len(small_pth) // 2])
put('pth', 'out-of-range-view.pth', pth(collections.OrderedDict([
    ('x', Tensor(Storage('Float', '0', 6), 4, [4, 4], [4, 1]))]), blobs))
put('pth', 'huge-numel.pth', pth(collections.OrderedDict([
    ('x', Tensor(Storage('Float', '0', 1 << 62), 0, [1 << 31, 1 << 31], [1 << 31, 1]))]), blobs))
common('zip')
put('zip', 'small.pth', small_pth)
put('zip', 'no-end-record', small_pth[:-22])
zip64 = io.BytesIO()
with zipfile.ZipFile(zip64, 'w', zipfile.ZIP_STORED, allowZip64=True) as z:
    with z.open('a/data.pkl', 'w', force_zip64=True) as f:
        f.write(b'x' * 10)
put('zip', 'zip64.zip', zip64.getvalue())
common('pickle')
put('pickle', 'state.pkl', state_pickle(state))
put('pickle', 'nested.pkl', state_pickle(nested))
put('pickle', 'os-system.pkl', b'cos\nsystem\n(S\'true\'\ntR.')
put('pickle', 'deep-lists.pkl', b'\x80\x02' + b']' * 50000 + b'.')
fixture = first('fixtures/sam/vit_tiny/sam_vit_tiny.pth')
if fixture:
    with zipfile.ZipFile(fixture) as z:
        pkl = [n for n in z.namelist() if n.endswith('data.pkl')][0]
        put('pickle', 'sam-vit-tiny.pkl', z.read(pkl))

# ---- training recipes (configs/*.json and edge cases)
common('recipe')
for path in sorted(glob.glob(os.path.join(root, 'configs', '*.json'))):
    with open(path) as f:
        put('recipe', os.path.basename(path), f.read())
minimal = {'model': {'arch': 'unet'}, 'data': {'train': [{'path': 'train'}]}}
put('recipe', 'minimal.json', json.dumps(minimal))
put('recipe', 'numbers-out-of-range.json', json.dumps(dict(minimal, train={
    'epochs': 1e300, 'batch_size': 3.5, 'seed': -1, 'lr': 1e308, 'step_epochs': [2, 4.0, 1e20],
    'checkpoint_every': 9223372036854775807, 'log_every': 18446744073709551615})))
put('recipe', 'overflowing-double.json', '{"model": {"arch": "unet", "options": {"base": 1e999}}, '
    '"data": {"train": [{"path": "x"}], "mpp": 1e999}}')
put('recipe', 'wrong-types.json', json.dumps({'model': {'arch': ['unet'], 'options': [1]},
                                              'data': {'train': {'path': 'x'}, 'augment': 3}}))
put('recipe', 'deep.json', '{"a":' * 100 + '1' + '}' * 100)

# ---- refine sessions (predict/refine_session.h)
def refine_session(key, h, w, crop, stride, crops):
    """crops: list of (points [(x, y, category)], labels (crop*crop list), classes, scores)."""
    b = b'NSREFINE' + struct.pack('<II', 1, len(key)) + key.encode()
    b += struct.pack('<iiiiI', h, w, crop, stride, len(crops))
    for points, labels, classes, scores in crops:
        b += struct.pack('<I', len(points)) + b''.join(struct.pack('<ffi', *p) for p in points)
        runs = []
        for v in labels:
            if runs and runs[-1][0] == v:
                runs[-1][1] += 1
            else:
                runs.append([v, 1])
        b += struct.pack('<iiI', crop, crop, len(runs)) + b''.join(struct.pack('<iI', *r) for r in runs)
        b += struct.pack('<I', len(classes)) + b''.join(struct.pack('<i', c) for c in classes)
        b += struct.pack('<I', len(scores)) + b''.join(struct.pack('<f', s) for s in scores)
    return b


def square_labels(crop, squares):
    labels = [0] * (crop * crop)
    for label, (y0, x0, size) in enumerate(squares, 1):
        for y in range(y0, y0 + size):
            for x in range(x0, x0 + size):
                labels[y * crop + x] = label
    return labels


common('refine_session')
key = 'image=00000000000000aa model=00000000000000bb precision=fp32 decoding=1,10,2,0'
one = refine_session(key, 16, 16, 16, 8, [([(5.5, 4.0, 2)], square_labels(16, [(2, 3, 4), (9, 9, 5)]), [2, 1],
                                           [0.75, 0.5])])
put('refine_session', 'one-crop', one)
empty = ([], [0] * 256, [], [])
put('refine_session', 'four-crops', refine_session(key, 24, 24, 16, 8, [
    empty, ([(20.0, 3.0, 1), (21.0, 3.0, 3)], square_labels(16, [(0, 0, 3)]), [1], [1.0]), empty, empty]))
put('refine_session', 'cut-short', one[:len(one) * 2 // 3])
put('refine_session', 'crop-count-4G', one[:32 + len(key)] + struct.pack('<I', 0xffffffff) + one[36 + len(key):])

# ---- refine's points files (cli/points.h)
common('points')
put('points', 'points.json', json.dumps({'points': [{'x': 100, 'y': 120, 'class': 'Epithelial'},
                                                    {'x': 30.5, 'y': 40, 'class': 2}]}))
put('points', 'bare-list.json', json.dumps([{'x': 1, 'y': 2, 'class': 'boundary'}, {'x': 3, 'y': 4, 'class': '0'}]))
put('points', 'qupath.geojson', json.dumps({'type': 'FeatureCollection', 'features': [
    {'type': 'Feature', 'geometry': {'type': 'Point', 'coordinates': [100, 120]},
     'properties': {'objectType': 'annotation', 'classification': {'name': 'epithelial', 'color': [255, 0, 0]}}},
    {'type': 'Feature', 'geometry': {'type': 'MultiPoint', 'coordinates': [[30.5, 40], [1e300, -1e300]]},
     'properties': {'classification': {'name': 'inflammatory'}}}]}))
put('points', 'wrong-types.geojson', json.dumps({'type': 'FeatureCollection', 'features': [
    [1, 2], {'geometry': {'type': ['Point']}}, {'geometry': 'x', 'properties': 3}]}))
