#!/usr/bin/env python3
"""How far PyTorch float32 attention is from the float64 reference on the fixtures.

Run: /usr/bin/python3 tests/tools/f32_deviation.py  (reuses make_fixtures.py forward code,
with the float64 mask cast replaced by float32 so the whole pass runs in float32)."""
import sys, json, numpy as np, torch
sys.path.insert(0, 'tests/tools')
import types
src=open('tests/tools/make_fixtures.py').read().replace('.double()','.float()')
mf=types.ModuleType('mf'); mf.__file__='tests/tools/make_fixtures.py'
exec(compile(src.replace("if __name__ == '__main__'","if False").replace('if __name__ == "__main__"','if False'),'mf','exec'), mf.__dict__)
torch.set_num_threads(1)
for name, kind, prefix, f in [("bert_tiny","bert","","model.safetensors"),("bert_mlm_f16","bert","bert.","model.safetensors"),("roberta_tiny","bert","roberta.","model.safetensors"),
                      ("distilbert_tiny","distilbert","","model.safetensors"),("gpt2_tiny","gpt2","transformer.","model.safetensors"),("gpt2_bf16","gpt2","","model.safetensors")]:
    d = f"tests/data/models/{name}"
    cfg = json.load(open(d+"/config.json"))
    _, got = mf.read_safetensors(d+"/"+f)
    W = {k: torch.from_numpy(np.asarray(a).astype(np.float32)) for k,(dt,a) in got.items() if dt in ("F32","F16","BF16")}
    for case in ("plain","padded"):
        ids = torch.from_numpy(np.load(f"{d}/reference/{case}_ids.npy"))
        mask = torch.from_numpy(np.load(f"{d}/reference/{case}_mask.npy"))
        ref = np.load(f"{d}/reference/{case}_attentions.npy")
        # float32 mask to keep everything float32
        fwd = mf.FORWARD[kind]
        with torch.no_grad():
            ctxs = []
            att, sc, hid = fwd(W, cfg, ids, mask, prefix, ctxs)
        sref = np.load(f"{d}/reference/{case}_scores.npy")
        href = np.load(f"{d}/reference/{case}_hidden.npy")
        cref = np.load(f"{d}/reference/{case}_context.npy")
        cdev = np.abs(torch.stack(ctxs).numpy() - cref).max()
        print(f"{name:16s} {case:6s} max |torch f32 - f64|: attention {np.abs(att.numpy()-ref).max():.2e}"
              f"  scores {np.abs(sc.numpy()-sref).max():.2e}  hidden {np.abs(hid.numpy()-href).max():.2e}"
              f"  context {cdev:.2e}")
