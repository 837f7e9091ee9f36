import pytest
import torch
from torchvision.models import resnet18

from vireid.config import load_config
from vireid.models import build_model
from vireid.models.non_local import NonLocal
from vireid.models.pooling import GeM
from vireid.models.two_stream import TwoStreamNet
from vireid.models.weights import WeightsError


def tiny(**kw):
    args = dict(arch="resnet18", num_classes=5, width=0.125, non_local=True)
    args.update(kw)
    return TwoStreamNet(**args)


def test_output_shapes_and_eval_feature():
    net = tiny()
    x = torch.randn(4, 3, 64, 32)
    m = torch.tensor([0, 1, 0, 1])
    out = net.train()(x, m)
    assert out["pool"].shape == (4, 64) and out["logits"].shape == (4, 5)
    net.eval()
    f = net.embed(x, m)
    assert torch.allclose(f.norm(dim=1), torch.ones(4))
    assert "logits" not in net(x, m)


def test_mixed_batch_routes_each_sample_to_its_stem():
    torch.manual_seed(0)
    net = tiny().eval()
    with torch.no_grad():  # make the two stems clearly different
        net.stems[1][0].weight.mul_(-3)
    x = torch.randn(4, 3, 64, 32)
    m = torch.tensor([1, 0, 0, 1])
    mixed = net(x, m)["feat"]
    vis = net(x[[1, 2]], torch.tensor([0, 0]))["feat"]
    ir = net(x[[0, 3]], torch.tensor([1, 1]))["feat"]
    torch.testing.assert_close(mixed[[1, 2]], vis)
    torch.testing.assert_close(mixed[[0, 3]], ir)
    assert not torch.allclose(mixed[0], net(x[[0]], torch.tensor([0]))["feat"][0])


def test_non_local_starts_as_identity_with_one_channel():
    block = NonLocal(16)
    assert block.g.out_channels == 1  # the community's reduc_ratio // reduc_ratio quirk
    x = torch.randn(2, 16, 5, 3)
    torch.testing.assert_close(block(x), x)


def test_non_local_placement():
    net = TwoStreamNet("resnet50", 0, non_local=True)
    assert [len(n) for n in net.non_local] == [0, 2, 3, 0]
    assert net.nl_index[2] == [3, 4, 5]
    assert sum(len(n) for n in TwoStreamNet("resnet18", 0, non_local=False).non_local) == 0


def test_gem_values():
    x = torch.rand(2, 3, 4, 4) + 0.1
    expected = (x.pow(3).mean((2, 3)) + 1e-12).pow(1 / 3)
    torch.testing.assert_close(GeM(3.0)(x), expected)
    g = GeM(3.0, learnable=True)
    assert isinstance(g.p, torch.nn.Parameter)
    torch.testing.assert_close(g(x), x.pow(3).mean((2, 3)).pow(1 / 3))


def test_gem_does_not_overflow_and_keeps_the_gradient():
    # activations past 7e12 (a random init under eval-mode BN) overflow x^3 in float32
    x = (torch.rand(2, 3, 4, 4, dtype=torch.float64) + 0.1) * 1e15
    for learnable in (False, True):
        g = GeM(3.0, learnable=learnable)
        ref = (x.pow(3).mean((2, 3)) + (0 if learnable else 1e-12)).pow(1 / 3)
        xf = x.float().requires_grad_()
        out = g(xf)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=0)
    # zeros (a dead ReLU channel) give the eps floor, as the unscaled formula does
    torch.testing.assert_close(GeM(3.0)(torch.zeros(1, 2, 3, 3)), torch.full((1, 2), 1e-4))
    # gradient w.r.t. x and p equals the unscaled formula's
    x = (torch.rand(2, 3, 4, 4) + 0.1).requires_grad_()
    g = GeM(3.0, learnable=True)
    g(x).sum().backward()
    gx, gp = x.grad.clone(), g.p.grad.clone()
    x.grad, p = None, g.p.detach().clone().requires_grad_()
    x.clamp(min=1e-6).pow(p).mean((2, 3)).pow(1 / p).sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gp, p.grad)


def test_last_stride_one_doubles_the_map():
    a = TwoStreamNet("resnet18", 0, last_stride=1, width=0.125)
    b = TwoStreamNet("resnet18", 0, last_stride=2, width=0.125)
    x, m = torch.randn(1, 3, 64, 32), torch.tensor([0])
    fa = a.backbone(a.stem_forward(x, m))
    fb = b.backbone(b.stem_forward(x, m))
    assert fa.shape[-2:] == (4, 2) and fb.shape[-2:] == (2, 1)


def test_pretrained_from_local_file(tmp_path):
    ref = resnet18()
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    cfg = load_config(None, ["model.arch=resnet18", f"model.pretrained={path}"]).model
    net = build_model(cfg, 3)
    torch.testing.assert_close(net.stems[0][0].weight, ref.conv1.weight)
    torch.testing.assert_close(net.stems[1][0].weight, ref.conv1.weight)
    torch.testing.assert_close(net.layers[3][1].conv2.weight, ref.layer4[1].conv2.weight)


def test_pretrained_errors(tmp_path):
    cfg = load_config(None, ["model.arch=resnet18", f"model.pretrained={tmp_path / 'x.pth'}"])
    with pytest.raises(WeightsError, match=r"x.pth does not exist"):
        build_model(cfg.model, 3)
    wrong = tmp_path / "r50.pth"
    from torchvision.models import resnet50

    torch.save(resnet50().state_dict(), wrong)
    cfg = load_config(None, ["model.arch=resnet18", f"model.pretrained={wrong}"])
    with pytest.raises(WeightsError, match="does not fit a resnet18"):
        build_model(cfg.model, 3)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    cfg = load_config(None, ["model.arch=resnet18", f"model.pretrained={junk}"])
    with pytest.raises(WeightsError, match=r"junk.pth: not a loadable state dict"):
        build_model(cfg.model, 3)


def test_layer1_modality_specific_loads_imagenet_layer1_into_both_stems(tmp_path):
    """MUN's reading of "the first stage … as two independent ResBlocks": layer1 joins each
    stem, both copies start from the pretrained layer1, the shared part is layer2–4."""
    ref = resnet18()
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    over = ["model.arch=resnet18", f"model.pretrained={path}", "model.modality_specific=layer1"]
    net = build_model(load_config(None, over).model, num_classes=3)
    assert len(net.layers) == 3 and net.stem_channels == 64
    for stem in net.stems:
        assert torch.equal(stem[4][0].conv1.weight, ref.layer1[0].conv1.weight)
    assert torch.equal(net.layers[0][0].conv1.weight, ref.layer2[0].conv1.weight)
    with torch.no_grad():
        net.stems[1][4][0].conv1.weight.add_(1.0)  # independent copies
    assert not torch.equal(net.stems[0][4][0].conv1.weight, net.stems[1][4][0].conv1.weight)
    x, m = torch.randn(2, 3, 64, 32), torch.tensor([0, 1])
    assert net.stem_forward(x, m).shape == (2, 64, 16, 8)
    assert net.train()(x, m)["pool"].shape == (2, 512)
