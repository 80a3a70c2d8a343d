#!/usr/bin/python3
"""The desktop services the app talks to over the session D-Bus, for tests.

`serve EVENTS`: a notification server (org.freedesktop.Notifications) and a
tray host (org.kde.StatusNotifierWatcher, which AppIndicator tray icons
register with). Each notification and each tray registration is appended to
EVENTS as one JSON line.

`tray-menu ITEM`: prints the labels of the tray item's menu (over its
com.canonical.dbusmenu interface), one JSON list.
`tray-click ITEM LABEL`: clicks the menu entry with that label.
`close-window TITLE`: what a window manager's close button does: sends
WM_DELETE_WINDOW to the top-level X window with that title.

ITEM is the registered service as written to EVENTS ("bus-name/object-path").
Uses Debian's python3-dbus, python3-gi and python3-xlib.
"""
import json
import sys
import time

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib


class Events:
    def __init__(self, path):
        self.path = path

    def write(self, **event):
        event["at"] = time.time()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")


class Notifications(dbus.service.Object):
    def __init__(self, bus, events):
        super().__init__(bus, "/org/freedesktop/Notifications")
        self.events = events
        self.next_id = 1

    @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["body", "actions"]

    @dbus.service.method("org.freedesktop.Notifications", in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, icon, summary, body, actions, hints, timeout):
        nid = self.next_id
        self.next_id += 1
        self.events.write(kind="notification", id=nid, app=str(app_name), summary=str(summary), body=str(body))
        return nid

    @dbus.service.method("org.freedesktop.Notifications", in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        pass

    @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("waymark-test-notifications", "waymark", "1", "1.2")


WATCHER = "org.kde.StatusNotifierWatcher"


class Watcher(dbus.service.Object):
    def __init__(self, bus, events):
        super().__init__(bus, "/StatusNotifierWatcher")
        self.events = events
        self.items = []

    @dbus.service.method(WATCHER, in_signature="s", out_signature="", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, service, sender=None):
        # AppIndicator passes its object path; the item lives at the sender's name.
        path = service if service.startswith("/") else "/StatusNotifierItem"
        name = sender if service.startswith("/") else service
        item = f"{name}{path}"
        self.items.append(item)
        self.events.write(kind="tray", item=item)
        self.StatusNotifierItemRegistered(item)

    @dbus.service.method(WATCHER, in_signature="s", out_signature="")
    def RegisterStatusNotifierHost(self, service):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemRegistered(self, item):
        pass

    @dbus.service.signal(WATCHER, signature="")
    def StatusNotifierHostRegistered(self):
        pass

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        return self.GetAll(interface)[prop]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return {
            "RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
            "IsStatusNotifierHostRegistered": True,
            "ProtocolVersion": dbus.Int32(0),
        }


def serve(events_path):
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    events = Events(events_path)
    keep = [
        dbus.service.BusName("org.freedesktop.Notifications", bus),
        dbus.service.BusName(WATCHER, bus),
        Notifications(bus, events),
        Watcher(bus, events),
    ]
    events.write(kind="ready")
    GLib.MainLoop().run()
    return keep


def menu(item):
    bus = dbus.SessionBus()
    name, _, path = item.partition("/")
    props = dbus.Interface(bus.get_object(name, "/" + path), dbus.PROPERTIES_IFACE)
    menu_path = props.Get("org.kde.StatusNotifierItem", "Menu")
    dbusmenu = dbus.Interface(bus.get_object(name, menu_path), "com.canonical.dbusmenu")
    _, layout = dbusmenu.GetLayout(0, -1, ["label", "enabled", "visible"])
    entries = []

    def walk(node):
        nid, props, children = node
        # Node 0 is the menu itself, not an entry.
        if nid != 0 and "label" in props:
            entries.append({"id": int(nid), "label": str(props["label"]).replace("_", ""),
                            "enabled": bool(props.get("enabled", True))})
        for child in children:
            walk(child)

    walk(layout)
    return dbusmenu, entries


def close_window(title):
    from Xlib import X, display, protocol

    d = display.Display()
    wm_protocols = d.intern_atom("WM_PROTOCOLS")
    delete = d.intern_atom("WM_DELETE_WINDOW")

    def find(window):
        if window.get_wm_name() == title:
            return window
        for child in window.query_tree().children:
            found = find(child)
            if found:
                return found
        return None

    target = find(d.screen().root)
    if target is None:
        sys.exit(f"no window titled {title!r}")
    event = protocol.event.ClientMessage(window=target, client_type=wm_protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
    target.send_event(event, event_mask=X.NoEventMask)
    d.flush()


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(sys.argv[2])
    elif cmd == "tray-menu":
        _, entries = menu(sys.argv[2])
        print(json.dumps(entries))
    elif cmd == "tray-click":
        dbusmenu, entries = menu(sys.argv[2])
        target = [e for e in entries if e["label"] == sys.argv[3]]
        if not target:
            sys.exit(f"no menu entry labelled {sys.argv[3]!r}: {[e['label'] for e in entries]}")
        dbusmenu.Event(target[0]["id"], "clicked", dbus.Int32(0, variant_level=1), dbus.UInt32(int(time.time())))
    elif cmd == "close-window":
        close_window(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
