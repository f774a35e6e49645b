"""CoSpeech: speech-driven SMPL-X face-and-body animation for Blender.

Extension entry point (Blender 4.2+ extensions are imported as
``bl_ext.<repo>.cospeech``; everything inside uses relative imports).
``model/`` never imports bpy, so this file imports the Blender-side
sub-packages only inside :func:`register`.
"""


def register():
    from . import operators, panels
    from .addon import settings

    settings.register()
    operators.register()
    panels.register()


def unregister():
    from . import operators, panels
    from .addon import settings

    panels.unregister()
    operators.unregister()
    settings.unregister()
