"""The sidebar panel draws in every state a user meets, with real data.

Blender's ``UILayout`` exists only with a UI, so the panel's draw function
runs against a checking layout: every ``prop`` / ``prop_search`` /
``template_list`` must name a real RNA property of the real datablock, every
``operator`` a registered operator and its real properties.  A typo there
would break the panel for every user and no other test would notice."""
from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from conftest import REPO, load_extension_package  # noqa: E402

cs = load_extension_package()
from cospeech.panels import main_panel  # noqa: E402
from blender_helpers import add_strip, new_scene, run  # noqa: E402
import retarget_rigs as rr  # noqa: E402

ARCTIC = REPO / "tools" / "demo_audio" / "arctic_a0007.wav"


pytestmark = pytest.mark.usefixtures("registered_module")


def _has_prop(data, name: str) -> bool:
    if name.startswith('["'):
        return name[2:-2] in data.keys()
    return name in data.bl_rna.properties


class OpProps:
    def __init__(self, idname):
        mod, op = idname.split(".")
        self._props = getattr(getattr(bpy.ops, mod), op).get_rna_type().properties

    def __setattr__(self, key, value):
        if key != "_props":
            assert key in self._props, f"operator has no property '{key}'"
        object.__setattr__(self, key, value)


class CheckingLayout:
    """Records what the panel draws and checks each reference against RNA."""

    def __init__(self, log):
        self.log = log

    def _child(self, *a, **k):
        return CheckingLayout(self.log)

    column = row = box = split = _child

    def grid_flow(self, **k):
        return CheckingLayout(self.log)

    def label(self, text="", icon="NONE"):
        self.log.append(("label", text))

    def progress(self, **k):
        self.log.append(("progress",))

    def prop(self, data, name, **k):
        assert _has_prop(data, name), f"{data!r} has no property '{name}'"
        self.log.append(("prop", name))

    def prop_search(self, data, name, search_data, search_name, **k):
        assert _has_prop(data, name) and _has_prop(search_data, search_name)
        self.log.append(("prop_search", name))

    def operator(self, idname, **k):
        mod, op = idname.split(".")
        assert hasattr(getattr(bpy.ops, mod), op) and getattr(getattr(bpy.ops, mod), op).poll is not None
        getattr(getattr(bpy.ops, mod), op).get_rna_type()     # raises if not registered
        self.log.append(("operator", idname))
        return OpProps(idname)

    def template_list(self, listtype, list_id, data, propname, active_data, active_propname, **k):
        assert getattr(bpy.types, listtype, None) is not None, f"UIList {listtype} not registered"
        assert _has_prop(data, propname) and _has_prop(active_data, active_propname)
        self.log.append(("template_list", propname))
        for item in getattr(data, propname):           # draw each row as Blender would
            getattr(bpy.types, listtype).draw_item(None, bpy.context, CheckingLayout(self.log), data, item,
                                                   0, active_data, active_propname)


def draw() -> list:
    log = []
    main_panel._draw(CheckingLayout(log), bpy.context)
    return log


def test_panel_draws_empty_scene_default_rig_takes_and_characters():
    scene, arm = new_scene()
    bpy.context.view_layer.objects.active = None
    assert ("operator", "cospeech.generate") in draw()

    bpy.context.view_layer.objects.active = arm
    add_strip(scene, ARCTIC)
    assert run("generate") == {"FINISHED"}
    log = draw()
    assert ("operator", "cospeech.adjust_take") in log and ("operator", "cospeech.set_take") in log

    ob, _ = rr.build("Hero", rr.mixamo_bones())
    scene.cospeech.target = ob
    log = draw()
    assert any(e[0] == "label" and "Mixamo, 52 bones" in e[1] for e in log)
    assert run("detect_bone_map") == {"FINISHED"}
    log = draw()
    assert sum(1 for e in log if e == ("prop_search", "bone")) == 52

    stick = bpy.data.objects.new("Stick", bpy.data.armatures.new("Stick"))
    scene.collection.objects.link(stick)
    scene.cospeech.target = stick                         # an unknown armature: the reason, no crash
    assert any(e[0] == "label" and "neither an SMPL-X" in e[1] for e in draw())
