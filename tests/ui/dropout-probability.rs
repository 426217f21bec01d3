bp::network! {
    struct Net {
        input x: [8];
        let d = dropout(x, 1.5);
        let out = linear(d, 2);
        output out;
    }
}

fn main() {}
