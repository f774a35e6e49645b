"""CoSpeech: speech-driven SMPL-X face-and-body animation for Blender.

Extension entry point (Blender 4.2+ extensions are imported as
``bl_ext.<repo>.cospeech``; everything inside uses relative imports).
``model/`` never imports bpy, so this file imports the Blender-side
sub-packages only inside :func:`register`.
"""

#: Blender versions the add-on is tested on, as in blender_manifest.toml
#: (blender_version_min inclusive, blender_version_max exclusive).
BLENDER_MIN = (4, 5, 0)
BLENDER_MAX = (5, 3, 0)


def check_blender_version(version):
    """Refuse a Blender older than the tested range with a clear message
    (RuntimeError: Blender shows it when enabling fails); warn on a newer one."""
    ver = ".".join(map(str, version))
    tested = f"{BLENDER_MIN[0]}.{BLENDER_MIN[1]} LTS to {BLENDER_MAX[0]}.{BLENDER_MAX[1] - 1} LTS"
    if tuple(version) < BLENDER_MIN:
        raise RuntimeError(f"CoSpeech needs Blender {tested} (this is Blender {ver}): "
                           "it uses slotted actions and the Sequencer's strips API")
    if tuple(version) >= BLENDER_MAX:
        print(f"CoSpeech warning: tested on Blender {tested}; this is Blender {ver}, which may not work")


def register():
    import bpy

    check_blender_version(bpy.app.version)
    from . import operators, panels
    from .addon import settings

    settings.register()
    operators.register()
    panels.register()
    # load the model and audio stack in the background once Blender's UI is
    # up, so the first Generate does not pay ~1.2 s of imports and model load
    # (not in background mode: scripts and the CLI generate at once anyway)
    from .addon import backend
    if not bpy.app.background and not bpy.app.timers.is_registered(backend.start_warm_up):
        bpy.app.timers.register(backend.start_warm_up, first_interval=1.0)


def unregister():
    from . import operators, panels
    from .addon import settings

    import bpy
    from .addon import backend
    if bpy.app.timers.is_registered(backend.start_warm_up):
        bpy.app.timers.unregister(backend.start_warm_up)
    panels.unregister()
    operators.unregister()
    settings.unregister()
