// The offline map: vector tiles from the PMTiles archive chosen in Settings,
// drawn by protomaps-leaflet. Its own module, so the renderer is loaded only
// when an offline map is used.

import L from "leaflet";
import { PMTiles, type RangeResponse, type Source } from "pmtiles";
import { leafletLayer } from "protomaps-leaflet";
import { api } from "./api";

/** The archive chosen in Settings, read in ranges through the app: the
 *  window never learns its path and nothing goes over the network. */
class OfflineArchive implements Source {
  getKey(): string {
    return "waymark-offline-map";
  }

  async getBytes(offset: number, length: number): Promise<RangeResponse> {
    return { data: await api.offlineMapRange(offset, length) };
  }
}

/** Vector tiles from the offline archive, drawn on canvases in the
 *  Protomaps basemap style (light or dark, as the system is). */
export function offlineLayer(attribution: string, unreadable: () => void): L.GridLayer {
  // protomaps-leaflet extends the global Leaflet.
  (window as unknown as { L: typeof L }).L = L;
  const archive = new PMTiles(new OfflineArchive());
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  const layer = leafletLayer({
    url: archive,
    flavor: dark ? "dark" : "light",
    lang: "en",
    // Protomaps extracts (and the demo archive) stop at zoom 15; beyond it the
    // vectors are drawn larger.
    maxDataZoom: 15,
    maxZoom: 19,
    attribution,
  }) as unknown as L.GridLayer;
  // An archive that cannot be read says so, like tiles that cannot load.
  archive.getHeader().catch(() => unreadable());
  return layer;
}

