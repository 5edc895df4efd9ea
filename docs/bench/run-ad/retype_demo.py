"""retype_demo.py IN.gguf OUT.gguf TYPE -- the demo model's Q8_0 matrices dequantized and written
as TYPE (f32 or bf16), every other tensor and key as it is. (The demo's training checkpoint is
not on every host; this gives an F32 and a BF16 model with the demo's trained weights, to measure
what BF16 weights cost against F32 in bits per token, and Q8_0's activation quantization against
its own weights in F32.)"""
import sys

import numpy as np
import gguf


def main(src, dst, ty):
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for f in r.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF."):
            continue
        if f.name == "general.alignment":
            w.add_custom_alignment(int(f.contents()))
            continue
        vt = f.types[0]
        sub = f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), vt, sub_type=sub)
    qt = {"f32": gguf.GGMLQuantizationType.F32, "bf16": gguf.GGMLQuantizationType.BF16}[ty]
    out = []
    for t in r.tensors:
        if t.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            data = x if ty == "f32" else gguf.quants.quantize(x, qt)
            out.append((t.name, data, qt))
        else:
            out.append((t.name, t.data, t.tensor_type))
    for name, data, tt in out:
        w.add_tensor_info(name, data.shape, data.dtype, data.nbytes, tt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, data, tt in out:
        w.write_tensor_data(data)
    w.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
