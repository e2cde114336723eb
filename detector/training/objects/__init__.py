"""3-D builders for scene objects: the three positive classes and their look-alike distractors.

Each builder takes a random generator and a local frame (where the object stands and which way it
faces) and returns an :class:`~detector.training.geometry.Obj` made of flat-shaded or textured
primitives. Every class comes in structurally different forms (an umbrella stall and a tricycle cart
share little but their label), because the model is later judged on real photographs.

Local frame convention: ``u`` runs along the object's length, ``v`` points away from the viewer side
(the object's front faces ``-v``), ``z`` is up.
"""
